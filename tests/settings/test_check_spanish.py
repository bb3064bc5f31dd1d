"""``crmkit check`` speaks the client's language: a Spanish workspace's problems read in Spanish.

Each case breaks a copy of the Spanish demo bank in one way, runs ``crmkit check`` through the
command line in-process, and asserts that the Spanish text is printed and that no English
sentence of the catalogue (the parts of the messages between placeholders) is.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from crmkit.core.i18n import catalogue
from crmkit.delivery.cli import main

BANK = Path(__file__).resolve().parents[2] / "data" / "demo" / "bank"
ENCODING = "latin-1"  # the bank's export, as its client.yaml says (csv.encoding)


def _english_fragments() -> set[str]:
    """Fixed English text (two words or more) of every message unlike its Spanish side."""
    out = set()
    for texts in catalogue().values():
        for part in re.split(r"\{[^}]*\}", texts["en"]):
            part = part.strip(" ;:,.()'\"")
            if len(part) >= 12 and " " in part and part not in texts["es"]:
                out.add(part)
    return out


def _copy(tmp_path: Path, language: str = "es") -> Path:
    root = tmp_path / "bank"
    shutil.copytree(BANK, root)
    config = root / "client.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r"(?m)^language: \w+", f"language: {language}", text),
                      encoding="utf-8")
    return root


def _edit(path: Path, old: str, new: str, encoding: str = "utf-8", count: int = 1) -> None:
    text = path.read_text(encoding=encoding)
    assert old in text, old
    path.write_text(text.replace(old, new, count), encoding=encoding)


def _bad_date(root: Path) -> None:
    _edit(root / "transactions.csv", "40012019;01/11/2023;", "40012019;45/11/2023;", ENCODING)


def _missing_column(root: Path) -> None:
    _edit(root / "transactions.csv", ";Importe;", ";Imp;", ENCODING)


def _wrong_separator(root: Path) -> None:
    _edit(root / "client.yaml", "  separator: ;", "  separator: ','")


def _misspelt_key(root: Path) -> None:
    _edit(root / "client.yaml", "relationships:\n  current:", "relationships:\n  currnet:")


def _retention_out_of_range(root: Path) -> None:
    _edit(root / "client.yaml", "relationships:\n",
          "relationships:\n  retention:\n    champions: 1.5\n")


def _bad_query(root: Path) -> None:
    with (root / "client.yaml").open("a", encoding="utf-8") as handle:
        handle.write('queries:\n  survey: "SELECT * FROM \'/etc/passwd\'"\n')


def _pdf_as_csv(root: Path) -> None:
    (root / "transactions.csv").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")


def _cost_in_no_phase(root: Path) -> None:
    _edit(root / "client.yaml", "      one_off: 3500\n",
          "      one_off: 3500\n      phase: pilto\n")


def _move_to_same_type(root: Path) -> None:
    _edit(root / "client.yaml", "      to: self_service\n", "      to: personal_assistance\n")


def _own_phase_without_label(root: Path) -> None:
    _edit(root / "client.yaml", "crm_project:\n", "crm_project:\n  phases:\n    sandbox:\n"
          "      months: 2\n")


def _own_map_with_overlap_and_gap(root: Path) -> None:
    (root / "mapa.yaml").write_text(
        "key: mi_mapa\nkind: scores\nscale: 2\ndimensions: [r, f]\n"
        "title: {en: Mine, es: El mío}\n"
        "segments:\n"
        "  - {key: lejanos, name: {en: Far}, description: {en: a, es: b}, rule: {r: 1}}\n"
        "  - {key: fieles, name: {en: Loyal, es: Fieles}, description: {en: a, es: b},\n"
        "     rule: {r: 2, f: 2}, colour: red}\n"
        "  - {key: otros2, name: {en: X, es: X}, description: {en: a, es: b},\n"
        "     rule: {r: 2, f: 2}}\n", encoding="utf-8")
    _edit(root / "client.yaml", "branding:\n", "segmentation:\n  map: mapa.yaml\nbranding:\n")


def _unknown_bundled_map(root: Path) -> None:
    _edit(root / "client.yaml", "branding:\n", "segmentation:\n  map: rfm_diez\nbranding:\n")


def _colour_by_name(root: Path) -> None:
    _edit(root / "client.yaml", "  primary_color: '#0b3954'", "  primary_color: azul")


def _not_yaml(root: Path) -> None:
    _edit(root / "client.yaml", "branding:\n", "branding: [sin cerrar\n")


CASES = {
    "not_yaml": (_not_yaml, ["no es YAML válido", "se esperaban líneas 'clave: valor'"]),
    "own_map": (_own_map_with_overlap_and_gap, [
        "segmento 'lejanos' 'name' no tiene texto en 'es'",
        "segmento 'fieles': 'colour' no es un ajuste de segmento",
        "R=2,F=2 lo reclaman 'fieles' y 'otros2'",
        "R=2,F=1 no lo reclama ningún segmento"]),
    "unknown_map": (_unknown_bundled_map, ["el mapa de segmentación 'rfm_diez' no es un mapa "
                                           "incluido; se esperaba uno de"]),
    "colour": (_colour_by_name, ["la clave 'branding.primary_color' tiene 'azul'; se esperaba "
                                 "un color como '#1b4965'"]),
    "cost_phase": (_cost_in_no_phase, ["el coste 'training' cae en la fase 'pilto', que no es una "
                                       "fase; se esperaba project o una de"]),
    "same_type": (_move_to_same_type, ["un paso a otro tipo; 'from' y 'to' son ambos "
                                       "'personal_assistance'"]),
    "own_phase": (_own_phase_without_label, ["la fase 'sandbox' no es una fase estándar",
                                             "una fase propia necesita una etiqueta"]),
    "binary": (_pdf_as_csv, ["parece un documento PDF, no texto",
                             "Archivo > Guardar como > CSV"]),
    "query_outside": (_bad_query, ["una ruta absoluta", "las consultas solo leen los archivos",
                                   "se esperaba un nombre de archivo relativo"]),
    "bad_date": (_bad_date, ["no es una fecha", "columna", "línea 2", "p. ej."]),
    "missing_column": (_missing_column, ["transactions.csv"]),
    "wrong_separator": (_wrong_separator, ["toda la cabecera es una sola columna",
                                            "pero la cabecera parece separada por"]),
    "misspelt_key": (_misspelt_key, ["no es un ajuste conocido"]),
    "retention": (_retention_out_of_range, ["una retención anual de 0 a menos de 1",
                                            "champions fuera de rango"]),
}


def _check(root: Path, capsys) -> str:
    code = main(["check", str(root)])
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err
    return captured.out + captured.err


@pytest.mark.parametrize("case", sorted(CASES))
def test_spanish_workspace_problems_are_in_spanish(case, tmp_path, capsys):
    break_it, spanish = CASES[case]
    root = _copy(tmp_path)
    break_it(root)
    out = _check(root, capsys)
    for text in spanish:
        assert text in out, out
    english = sorted(f for f in _english_fragments() if f in out)
    assert not english, f"English in a Spanish check: {english}\n{out}"


def test_english_workspace_keeps_english(tmp_path, capsys):
    root = _copy(tmp_path, "en")
    _bad_date(root)
    _wrong_separator(_copy(tmp_path / "other", "en"))
    out = _check(root, capsys)
    assert "not a date; expected a date" in out
    assert "column '" in out and "e.g. line 2" in out
    assert "no es una fecha" not in out


def test_english_workspace_keeps_english_settings_messages(tmp_path, capsys):
    root = _copy(tmp_path, "en")
    _cost_in_no_phase(root)
    out = _check(root, capsys)
    assert "cost 'training' falls in phase 'pilto', which is not a phase" in out
    assert "no es una fase" not in out


def test_missing_workspace_in_english(tmp_path, capsys):
    code = main(["check", str(tmp_path / "nowhere")])
    out = capsys.readouterr()
    assert code == 2
    assert "folder not found" in out.out + out.err


def test_an_interrupted_command_says_so_in_the_clients_language(tmp_path, capsys, monkeypatch):
    from crmkit.delivery import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "check", interrupted)
    assert main(["check", str(_copy(tmp_path))]) == 130
    assert capsys.readouterr().err.strip() == "Interrumpido; no se ha escrito nada."
