"""Fine-tune one cell with a p4m encoder of other fields than the default: python probe_fields.py 8,16,32,64 CONFIG OUT.

CONFIG: a photossl finetune config with ``encoder: p4m`` (e.g. plain-b400-s0.yaml with that line changed)."""
import functools
import sys

from photossl.config import read_yaml
from photossl.finetune import finetune, make_finetune_config
from photossl.models import P4MEncoder, factory

fields = tuple(int(f) for f in sys.argv[1].split(","))
factory.ENCODERS["p4m"] = functools.partial(P4MEncoder, fields=fields)
config = make_finetune_config(read_yaml(sys.argv[2]))
print(finetune(config, sys.argv[3]))
