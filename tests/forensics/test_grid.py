"""The tab's grid sandbox: allowlisted keys and plain values in, plain override strings out."""

import pytest

from forensics.grid import KEYS, Grid, GridError, NeedsConfirmation, parse_grid, redact
from forensics.sweep import expand_grid

ROUTES = ["code", "math", "knowledge"]


@pytest.mark.parametrize("text, named, why", [
    ("${oc.env:HOME}", "${oc.env:HOME}", "interpolation"),
    ("+x._target_=pathlib.Path.unlink", "+x._target_=pathlib.Path.unlink", "_target_"),
    ("router.semantic.threshold=${oc.env:HOME}", "router.semantic.threshold=${oc.env:HOME}", "interpolation"),
    ("router.semantic.threshold=0.1,${oc.env:HOME}", "router.semantic.threshold=0.1,${oc.env:HOME}", "interpolation"),
    ("hydra.run.dir=/tmp/x", "hydra.run.dir=/tmp/x", "hydra settings"),
    ("Hydra.job.chdir=true", "Hydra.job.chdir=true", "hydra settings"),
    ("~router.semantic", "~router.semantic", "deleting (~)"),
    ("+router.semantic.extra=1", "+router.semantic.extra=1", "adding (+"),
    ("++router.semantic.threshold=0.1", "++router.semantic.threshold=0.1", "adding (+"),
    ("router=../../etc/passwd", "router=../../etc/passwd", "paths"),
    ("router=C:\\x", "router=C:\\x", "paths"),
    ("router.semantic.head._target_=builtins.open", "router.semantic.head._target_=builtins.open", "_target_"),
    ("router.semantic.threshold='0.1'", "router.semantic.threshold='0.1'", "quotes"),
    ("router.semantic.threshold=range(0,1,0.1)", "router.semantic.threshold=range(0,1,0.1)", "functions"),
    ("router=choice(keyword,hybrid)", "router=choice(keyword,hybrid)", "functions"),
    ("router.keyword.priority=[code,math]", "router.keyword.priority=[code,math]", "lists"),
    ("router=key*", "router=key*", "globs"),
    ("router.semantic.threshold", "router.semantic.threshold", "not key=v1,v2"),
    ("router.semantic.cache_dir=x", "router.semantic.cache_dir=x", "unknown key 'router.semantic.cache_dir'"),
    ("ollama.host=evil", "ollama.host=evil", "unknown key"),
    ("router.semantic.threshold=1.5", "router.semantic.threshold=1.5", "a number in [-1, 1]"),
    ("router.semantic.head.c=0", "router.semantic.head.c=0", "(0, 100]"),
    ("router.semantic.top_k=2.5", "router.semantic.top_k=2.5", "whole number"),
    ("encoder.max_tokens=4", "encoder.max_tokens=4", "[8, 256]"),
    ("router.semantic.threshold=1e-3", "router.semantic.threshold=1e-3", "plain number"),
    ("router.semantic.threshold=0.1,,0.2", "router.semantic.threshold=0.1,,0.2", "empty value"),
    ("router.semantic.threshold=", "router.semantic.threshold=", "empty value"),
    ("router=calibrated", "router=calibrated", "one of hybrid, keyword, semantic"),
    ("encoder=onnx;rm", "encoder=onnx;rm", "character ';'"),
    ("router.default_route=cooking", "router.default_route=cooking", "one of code, math, knowledge"),
    ("router.semantic.head=other", "router.semantic.head=other", "one of null"),
    ("router.keyword.engine=python", "router.keyword.engine=python", "hyperscan, re2"),
    ("router=keyword router=hybrid", "router=hybrid", "given twice"),
    ("router.semantic.threshold=0.1,0.10", "router.semantic.threshold=0.1,0.10", "'0.10' is given twice"),
])
def test_refused_items_are_named(text, named, why):
    with pytest.raises(GridError) as caught:
        parse_grid(text, ROUTES)
    message = str(caught.value)
    assert repr(named) in message and why in message
    assert "/root" not in message and "/home" not in message  # nothing resolved


def test_a_valid_grid_becomes_plain_overrides():
    grid = parse_grid("router=keyword,semantic,hybrid  router.semantic.threshold=0.10,-0.1,5e0".replace(",5e0", ",0"),
                      ROUTES)
    assert grid == Grid(("router=keyword,semantic,hybrid", "router.semantic.threshold=0.1,-0.1,0"), 9)
    assert len(expand_grid(list(grid.overrides))) == grid.size
    every = parse_grid("encoder=onnx,sentence_transformer router.semantic.top_k=1,50 router.semantic.margin=0,10 "
                       "router.semantic.head.c=0.3 router.semantic.head.knn_weight=2 router.semantic.head.added_weight=100 "
                       "encoder.max_tokens=8,256 encoder.tail_tokens=0 router.keyword.head_chars=0,5000 "
                       "router.keyword.tail_chars=300 router.keyword.engine=re2,hyperscan router.semantic.head=null "
                       "router.default_route=code,math", ROUTES, max_configs=1000)
    assert every.size == 2 * 2 * 2 * 2 * 2 * 2 * 2 and {o.partition("=")[0] for o in every.overrides} <= set(KEYS)
    assert parse_grid("", ROUTES) == Grid((), 1)


def test_the_soft_limit_needs_confirmation_and_the_hard_one_is_final():
    text = "router=keyword,semantic,hybrid router.semantic.threshold=0.1,0.15,0.2 router.semantic.top_k=1,3,5"
    with pytest.raises(NeedsConfirmation) as caught:
        parse_grid(text, ROUTES, max_configs=24)
    assert caught.value.size == 27
    assert parse_grid(text, ROUTES, max_configs=24, confirmed=True).size == 27
    huge = " ".join([f"router.semantic.threshold={','.join(f'0.{i:02d}' for i in range(100))}",
                     f"router.keyword.head_chars={','.join(str(i) for i in range(100))}"])
    with pytest.raises(GridError, match="10000 configurations; the tab runs at most 200") as caught:
        parse_grid(huge, ROUTES, confirmed=True)
    assert not isinstance(caught.value, NeedsConfirmation)
    with pytest.raises(GridError, match="characters long"):
        parse_grid("router=keyword " * 400, ROUTES, confirmed=True)


def test_encoders_loaded_by_one_grid_are_capped():
    assert parse_grid("encoder=onnx,sentence_transformer encoder.max_tokens=32,64", ROUTES, max_configs=4).size == 4
    with pytest.raises(GridError, match="loads 6 encoders"):
        parse_grid("encoder=onnx,sentence_transformer encoder.max_tokens=32,64,128", ROUTES, confirmed=True)


def test_redact_names_environment_values_instead_of_showing_them():
    env = {"HOME": "/home/ann", "HF_TOKEN": "hf_secret_value_123", "SHLVL": "1"}
    text = "Cannot read /home/ann/.cache/x (token hf_secret_value_123) at line 1"
    assert redact(text, env) == "Cannot read $HOME/.cache/x (token $HF_TOKEN) at line 1"
