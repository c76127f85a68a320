"""A method's parts: which run, in which orders, and what each declares."""

import pytest

from photossl.errors import PhotosslError
from photossl.training.config import make_config, parse_method, resolve_defaults
from photossl.training.methods import method_of
from photossl.training.run_log import log_columns


@pytest.mark.parametrize("name, parts, terms, columns", [
    ("simclr", ["simclr"], ["simclr"], []),
    ("essl-care", ["care", "essl", "simclr"], ["simclr", "care", "essl"], ["care", "predict_ce", "predict_acc"]),
    ("essl-gcare-vicreg", ["essl", "gcare", "vicreg"], ["vicreg", "gcare", "essl"],
     ["invariance", "variance", "covariance", "gcare", "predict_ce", "predict_acc"]),
    ("care-moco", ["care", "moco"], ["moco", "care"], ["momentum", "care"]),
])
def test_parts_run_in_the_method_order(name, parts, terms, columns):
    method = method_of(parse_method(name))
    assert [p.name for p in method.parts] == parts and [p.name for p in method.terms] == terms
    assert method.columns == columns and method is method_of(parse_method(name))
    config = resolve_defaults(make_config({"method": name}))
    assert log_columns(config)[4:-4] == ["base", *columns]


def test_care_declares_its_batch_rule_and_essl_its_warning():
    care = resolve_defaults(make_config({"method": "care", "care_chunk": 8}))
    method_of(care.spec).check_batch(care, 16)
    with pytest.raises(PhotosslError, match="not divisible by care_chunk 8"):
        method_of(care.spec).check_batch(care, 12)
    essl = resolve_defaults(make_config({"method": "essl", "predict": "half_translate"}))
    assert "half-cell translations" in method_of(essl.spec).warnings(essl)[0]
    assert method_of(care.spec).warnings(care) == []
