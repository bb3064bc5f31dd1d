"""Saving judgements into client.yaml: comments kept, the schema enforced, racing saves refused."""

from __future__ import annotations

import shutil
import threading

import pytest
import yaml

from crmkit.core import paths
from crmkit.settings.client import load_config
from crmkit.settings.editing import ClientYaml, EditError

SCORE = "context.internal.technological.score"


@pytest.fixture
def retail(tmp_path):
    """A copy of the retail demo workspace, with a comment of our own inside a section."""
    client = tmp_path / "retail"
    shutil.copytree(paths.DEMO_CLIENTS / "retail", client)
    path = client / "client.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("  internal:\n", "  internal:  # scored with the board, 2026-10\n", 1)
    path.write_text(text, encoding="utf-8")
    return client


def _plain(client):
    return yaml.safe_load((client / "client.yaml").read_text(encoding="utf-8"))


def test_a_save_changes_only_the_keys_given_and_keeps_comments_and_order(retail):
    before = _plain(retail)
    original = (retail / "client.yaml").read_bytes()
    old = before["context"]["internal"]["technological"]["score"]
    new = 5 if old != 5 else 1
    backup = ClientYaml(retail).save({SCORE: new,
                                      "context.internal.people.note": "Hired an analyst"})
    text = (retail / "client.yaml").read_text(encoding="utf-8")
    after = _plain(retail)
    assert after["context"]["internal"]["technological"]["score"] == new
    assert after["context"]["internal"]["people"]["note"] == "Hired an analyst"
    # everything else is what it was, in the same order
    before["context"]["internal"]["technological"]["score"] = new
    before["context"]["internal"]["people"]["note"] = "Hired an analyst"
    assert after == before
    assert list(after) == list(before)
    assert "# scored with the board, 2026-10" in text
    assert text.startswith("# Northwind Living: a synthetic demo client")
    assert backup.read_bytes() == original
    assert load_config(retail).context.internal.technological.score == new


def test_a_value_outside_the_schema_is_refused_naming_the_key(retail):
    original = (retail / "client.yaml").read_bytes()
    with pytest.raises(EditError) as caught:
        ClientYaml(retail).save({SCORE: 7})
    message = caught.value.problems.render()
    assert SCORE in message and "7" in message and "5" in message
    assert (retail / "client.yaml").read_bytes() == original
    assert not (retail / "client.yaml.bak").exists()


def test_a_hand_edited_invalid_file_is_refused_and_kept_as_it_was(retail):
    path = retail / "client.yaml"
    text = path.read_text(encoding="utf-8").replace("impact: high\n      time_frame: short",
                                                    "impact: huge\n      time_frame: short", 1)
    path.write_text(text, encoding="utf-8")
    original = path.read_bytes()
    with pytest.raises(EditError) as caught:
        ClientYaml(retail).save({SCORE: 3})
    message = caught.value.problems.render()
    assert "context.external.competitors.impact" in message and "'huge'" in message
    assert "'low'" in message and "'high'" in message
    assert path.read_bytes() == original


def test_the_refusal_speaks_the_clients_language(retail):
    with pytest.raises(EditError) as caught:
        ClientYaml(retail, lang="es").save({SCORE: 0})
    message = caught.value.problems.render()
    assert "la clave 'context.internal.technological.score' tiene 0" in message
    assert "al menos 1" in message


def test_a_segment_the_map_does_not_have_is_refused_like_crmkit_check_does(retail):
    original = (retail / "client.yaml").read_bytes()
    with pytest.raises(EditError) as caught:
        ClientYaml(retail).save({"relationships.expected.champs": "personal_assistance"})
    message = caught.value.problems.render()
    assert "relationships.expected.champs" in message and "champions" in message
    assert (retail / "client.yaml").read_bytes() == original


def test_a_second_save_on_the_same_key_is_refused_and_the_first_kept(retail):
    first, second = ClientYaml(retail), ClientYaml(retail)
    first.save({SCORE: 4})
    saved = (retail / "client.yaml").read_bytes()
    with pytest.raises(EditError) as caught:
        second.save({SCORE: 1})
    message = caught.value.problems.render()
    assert f"key '{SCORE}' was changed in the file since this form read it" in message
    assert (retail / "client.yaml").read_bytes() == saved
    # after reading the file again, the second form sees the first's change and can save
    second.reload()
    assert second.get(SCORE) == 4
    second.save({SCORE: 1})
    assert _plain(retail)["context"]["internal"]["technological"]["score"] == 1


def test_a_second_save_on_other_keys_sees_the_first(retail):
    first, second = ClientYaml(retail), ClientYaml(retail)
    first.save({SCORE: 4})
    backup = second.save({"context.internal.people.score": 2})
    after = _plain(retail)["context"]["internal"]
    assert after["technological"]["score"] == 4 and after["people"]["score"] == 2
    # the backup is the version the second save replaced: the first's
    assert yaml.safe_load(backup.read_text())["context"]["internal"]["technological"]["score"] == 4
    assert "# scored with the board, 2026-10" in (retail / "client.yaml").read_text()


def test_racing_saves_leave_one_whole_file_never_half_of_each(retail):
    editors = [ClientYaml(retail) for _ in range(6)]
    outcomes: list[str] = []
    start = threading.Barrier(len(editors))

    def save(i, editor):
        start.wait()
        try:
            editor.save({SCORE: 1 + i % 5, "context.internal.people.note": f"editor {i}"})
            outcomes.append(f"saved {i}")
        except EditError:
            outcomes.append("refused")

    threads = [threading.Thread(target=save, args=(i, e)) for i, e in enumerate(editors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    saved = [o for o in outcomes if o.startswith("saved")]
    assert len(saved) == 1 and outcomes.count("refused") == len(editors) - 1
    winner = int(saved[0].split()[1])
    config = load_config(retail)  # the file is whole and valid
    assert config.context.internal.people.note == f"editor {winner}"
    assert config.context.internal.technological.score == 1 + winner % 5
    assert not list(retail.glob(".client.yaml.*.tmp"))


def test_new_keys_are_added_and_none_removes_one(retail):
    ClientYaml(retail).save({"relationships.retention.champions": 0.9,
                             "relationships.fit.champions": None})
    after = _plain(retail)
    assert after["relationships"]["retention"] == {"champions": 0.9}
    assert "champions" not in after["relationships"]["fit"]


def test_the_schemas_own_validators_answer_in_the_language_of_the_save():
    """A custom validator (retention below 1) speaks the form's language, not always English."""
    import yaml

    from crmkit.core import paths
    from crmkit.settings.editing import validation_problems

    raw = yaml.safe_load((paths.DEMO_CLIENTS / "bank" / "client.yaml").read_text(encoding="utf-8"))
    raw["relationships"]["retention"] = {"champions": 1.5}
    _, spanish = validation_problems(raw, "es")
    _, english = validation_problems(raw, "en")
    assert "retención anual de 0 a menos de 1" in str(spanish[0])
    assert "yearly retention" not in str(spanish[0])
    assert "yearly retention from 0 to below 1" in str(english[0])
