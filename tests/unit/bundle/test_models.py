"""Model folders: safetensors and data files only; pickles refused, whatever their name."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from sovstack.bundle.collectors.models import (
    ModelSource,
    check_safetensors,
    model_files,
    parse_model_option,
)
from sovstack.bundle.errors import BundleError


def write_safetensors(path: Path, tensors: dict[str, int]) -> None:
    """A real safetensors file: 8-byte header length, JSON header, then the tensor bytes."""
    header, offset = {}, 0
    for name, size in tensors.items():
        header[name] = {"dtype": "U8", "shape": [size], "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(offset))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    folder.mkdir()
    write_safetensors(folder / "model-00001-of-00002.safetensors", {"a": 16, "b": 8})
    write_safetensors(folder / "model-00002-of-00002.safetensors", {"c": 4})
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "tokenizer.json").write_text("{}")
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    (folder / ".sovstack-stamp").write_text("stamp")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref")
    return folder


def test_weights_and_data_files_are_taken_hidden_entries_left_out(model: Path) -> None:
    files = model_files(ModelSource("tiny", model))
    assert [rel for rel, _ in files] == [
        "chat_template.jinja",
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "tokenizer.json",
    ]


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "optimizer.pkl", "w.ckpt"])
def test_a_pickle_is_refused_naming_the_file(model: Path, name: str) -> None:
    (model / name).write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    with pytest.raises(BundleError) as refused:
        model_files(ModelSource("tiny", model))
    assert f"{model / name}: a pickle file: loading it runs arbitrary code" in str(refused.value)


def test_a_pickle_under_a_data_files_name_is_refused(model: Path) -> None:
    (model / "special_tokens_map.json").write_bytes(pickle.dumps({"eos": "</s>"}))
    with pytest.raises(BundleError, match="holds a pickle or a zip archive"):
        model_files(ModelSource("tiny", model))


def test_a_pickle_renamed_safetensors_is_refused(model: Path) -> None:
    (model / "model-00002-of-00002.safetensors").write_bytes(pickle.dumps(list(range(100))))
    with pytest.raises(BundleError, match="not a safetensors file"):
        model_files(ModelSource("tiny", model))


def test_an_unknown_file_kind_is_refused(model: Path) -> None:
    (model / "convert.py").write_text("import os")
    with pytest.raises(BundleError, match="neither safetensors weights nor a configuration"):
        model_files(ModelSource("tiny", model))


def test_a_tensor_pointing_past_the_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    raw = json.dumps({"w": {"dtype": "U8", "shape": [64], "data_offsets": [0, 64]}}).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(10))
    with pytest.raises(BundleError, match="tensor 'w' lies outside the file"):
        check_safetensors(path)


def test_a_folder_without_weights_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BundleError, match="has no safetensors weights"):
        model_files(ModelSource("m", tmp_path))


def test_the_model_option_takes_a_name_or_the_folders_name(model: Path) -> None:
    assert parse_model_option(f"chat={model}") == ModelSource("chat", model)
    assert parse_model_option(str(model)).name == "tiny"
    with pytest.raises(BundleError, match="does not exist"):
        parse_model_option("x=/nonexistent/model")
    with pytest.raises(BundleError, match=r"model name '\.\./x'"):
        parse_model_option(f"../x={model}")
