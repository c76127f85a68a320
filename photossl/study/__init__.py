"""Label-budget studies: pretrain each method, fine-tune over budgets × seeds, tabulate, diagnose and plot."""

from photossl.study.config import MethodOptions, StudyConfig, make_study_config
from photossl.study.plan import plan_study
from photossl.study.records import Cell, StudyPlan
from photossl.study.runner import run_study

__all__ = ["Cell", "MethodOptions", "StudyConfig", "StudyPlan", "make_study_config", "plan_study", "run_study"]
