"""client.yaml is checked across its sections: a misspelt segment, relationship type or scenario
reference stops ``crmkit check`` and ``crmkit run`` with exit 2, the key and the closest valid name,
and nothing written."""

import os
import shutil
import subprocess
import sys

import pytest

from crmkit.core import paths
from crmkit.core.problems import UserError, WorkspaceError, closest
from crmkit.inputs.workspace import check_workspace, load_workspace
from crmkit.settings.crosscheck import cross_check, segment_references
from crmkit.settings.segment_maps import load_map


def _workspace(tmp_path, demo="retail", edit=None):
    target = tmp_path / demo
    shutil.copytree(paths.DEMO_CLIENTS / demo, target)
    if edit is not None:
        config = target / "client.yaml"
        text = config.read_text(encoding="utf-8")
        old, new = edit
        assert old in text, old
        config.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "crmkit", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env={**os.environ})


def test_closest_names_the_intended_key():
    assert closest("champs", ["champions", "loyal", "at_risk"]) == "champions"
    assert closest("hibernatin", ["hibernating", "at_risk"]) == "hibernating"
    assert closest("zzz", ["champions", "loyal"]) is None


def test_the_demo_clients_have_no_cross_section_problem():
    for demo in ("retail", "bank", "telecom"):
        assert not check_workspace(paths.DEMO_CLIENTS / demo), demo


def test_segment_references_cover_every_section():
    ws = load_workspace(paths.DEMO_CLIENTS / "retail")
    keys = [key for key, _ in segment_references(ws.config)]
    assert any(k.startswith("relationships.current.") for k in keys)
    assert any(k.startswith("relationships.fit.") for k in keys)
    assert any(k.startswith("scenarios[0].changes[0].move.segment") for k in keys)


def test_unknown_segment_is_named_with_the_closest_one():
    ws = load_workspace(paths.DEMO_CLIENTS / "retail")
    config = ws.config.model_copy(deep=True)
    config.relationships.current["champs"] = config.relationships.current.pop("champions")
    problems = cross_check(config, load_map("rfm_ten"))
    assert len(problems) == 1
    assert "relationships.current.champs" in problems[0].message
    assert "did you mean 'champions'?" in problems[0].message


def test_clustering_skips_segment_keys_but_not_channels():
    ws = load_workspace(paths.DEMO_CLIENTS / "retail")
    config = ws.config.model_copy(deep=True)
    config.relationships.current["champs"] = config.relationships.current.pop("champions")
    config.relationships.cost_drivers["personal_assistance"].channel_cost_per_minute["stor"] = 1.0
    problems = cross_check(config, None, channels=["store", "web"])
    assert len(problems) == 1
    assert "channel 'stor'" in problems[0].message
    assert "did you mean 'store'?" in problems[0].message


def test_user_error_is_a_value_error_with_problems():
    error = UserError("key 'x' has 'y'; expected 'z'")
    assert isinstance(error, ValueError) and len(error.problems) == 1
    assert issubclass(WorkspaceError, UserError)


@pytest.mark.parametrize(("edit", "expected"), [
    (("  current:\n    champions:", "  current:\n    champs:"),
     ["relationships.current.champs", "did you mean 'champions'?"]),
    (("      segment: hibernating", "      segment: hibernatin"),
     ["scenarios[0].changes[0].move.segment", "did you mean 'hibernating'?"]),
    (("      to: automated_services", "      to: automated_service"),
     ["scenarios.0.changes.0.move.to", "did you mean 'automated_services'?"]),
])
def test_check_exits_2_naming_the_key(tmp_path, edit, expected):
    ws = _workspace(tmp_path, edit=edit)
    done = _cli("check", ws)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    for text in expected:
        assert text in done.stderr


def test_run_exits_2_and_writes_nothing(tmp_path):
    ws = _workspace(tmp_path, edit=("  current:\n    champions:", "  current:\n    champs:"))
    out = tmp_path / "reports"
    done = _cli("run", ws, "--out", out, "--quiet")
    assert done.returncode == 2, done.stderr
    assert "relationships.current.champs" in done.stderr
    assert "nothing was written" in done.stderr
    assert not out.exists() or not any(out.rglob("*.ipynb"))


def test_messages_in_spanish_for_a_spanish_client(tmp_path):
    edit = ("  current:\n    champions:", "  current:\n    champs:")
    ws = _workspace(tmp_path, "bank", edit=edit)
    done = _cli("check", ws)
    assert done.returncode == 2
    assert "no se ha escrito nada" in done.stderr
    assert "nombra el segmento 'champs'" in done.stderr
    assert "¿quería decir 'champions'?" in done.stderr
