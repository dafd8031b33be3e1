"""Every SDK example in samples/cfx decodes; every invalid SDK text is refused with a reason."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pywats_cfx import CFXDecodeError, decode_cfx, parse_envelopes
from pywats_cfx.adapters import ADAPTED_MESSAGES
from pywats_events.codec import DecodeContext, get_decoder
from tests.cfx_samples import INVALID, REPO, SAMPLES, VALID
from tests.cfx_samples import MAPPED_TYPES as EXPECTED_TYPE


def test_samples_folder_holds_every_sdk_example() -> None:
    assert len(VALID) == 212  # 211 bodies in envelopes + the SDK's own envelope
    assert len(INVALID) == 10
    assert (SAMPLES / "README.md").is_file() and (SAMPLES / "SOURCES.txt").is_file()
    assert "Apache-2.0" in (SAMPLES / "SOURCES.txt").read_text()
    assert set(EXPECTED_TYPE) == ADAPTED_MESSAGES


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_sample_gives_events_of_the_mapped_type(path: Path) -> None:
    env = parse_envelopes(path.read_bytes(), origin=str(path))[0]
    events = decode_cfx(path.read_bytes(), DecodeContext(origin=str(path)))
    assert events, "every SDK example yields at least one event"
    expected = EXPECTED_TYPE.get(env.message_name, env.message_name)
    assert {e.type for e in events} == {expected}
    for ev in events:
        assert ev.timestamp.utcoffset() is not None and not ev.timestamp.utcoffset()
        json.loads(ev.to_json())


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_sdk_text_is_refused_with_a_reason(path: Path) -> None:
    with pytest.raises(CFXDecodeError) as info:
        decode_cfx(path.read_bytes(), DecodeContext(origin=str(path)))
    assert info.value.reason
    assert info.value.where == str(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_cfx_decoder_is_registered_with_the_core() -> None:
    assert get_decoder("cfx") is decode_cfx
    body = (SAMPLES / "CFX.Heartbeat__1.json").read_bytes()
    assert get_decoder("auto")(body, DecodeContext())[0].type == "system.heartbeat"


def test_sample_script_regenerates_identical_files(tmp_path: Path) -> None:
    sdk = REPO.parent / "shared" / "cfx-sdk-examples"
    if not (sdk / "bodies").is_dir():
        # The script reads the SDK examples beside the checkout (as CI has them); a bare clone elsewhere
        # lacks them, which says nothing about the script.
        pytest.skip(f"CFX SDK examples not found at {sdk}")
    out = tmp_path / "cfx"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_cfx_samples.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )

    def digest(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digest(out) == digest(SAMPLES)
