"""The intake forms of the consultant's JupyterLab: the judgements, entered where they are used.

Only the consultant and the management team can score the internal capabilities, weigh the
external factors, say which relationship each segment gets and expects, or put a price on the
CRM project. ``crmkit lab`` inserts one form per judgement into its working copies of the
workbooks (never into the committed ones, so papermill and nbval never meet a widget):

=======================  ===========================================================  =========
form                     keys of client.yaml                                          workbook
=======================  ===========================================================  =========
:func:`capabilities`     ``context.internal.<capability>.score`` and ``note``          01
:func:`external_factors` ``context.external.<factor>.impact``, ``time_frame``, …       01
:func:`relationships`    ``relationships.current``, ``expected``, ``fit`` per segment  03
:func:`retention`        ``relationships.retention`` per segment                       04
:func:`project_costs`    ``crm_project.costs.<category>.one_off``, ``yearly``, ``note`` 05
:func:`levers`           ``crm_project.levers`` (retention points, uplift, win-back…)  05
=======================  ===========================================================  =========

Each control offers only the values the schema allows (dropdowns of the allowed keys, sliders
within the bounds). "Save to client.yaml" goes through :class:`crmkit.settings.editing.ClientYaml`:
the whole file is validated as ``crmkit check`` would, a refusal is shown next to the control it
names (in the client's language) and the file is left as it was; comments and key order are kept
and the previous version is kept as ``client.yaml.bak``.

**After a save, what is below is recomputed by the form itself.** The workbook session reads
client.yaml again (:meth:`~crmkit.delivery.workbook.Workbook.reload_config`), then the form runs,
in the kernel, the cells of the working copy that depend on the judgement (``rerun``, by cell id)
and shows their new tables and charts under the form; each rendered prose paragraph of the
notebook is redrawn in place as the figures it uses are recorded again
(:meth:`~crmkit.delivery.workbook.Workbook.story`). Why not have the browser re-run the cells:
JupyterLab gives the kernel no way to ask for it, and reaching into the front end's internals from
an output would break with the next JupyterLab; the kernel-side re-run works in any front end
(JupyterLab, Notebook 7, VS Code), and the variables the later cells use are the new ones.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import ipywidgets as widgets

from crmkit.analysis.context import CAPABILITIES, EXTERNAL_FACTORS
from crmkit.core.catalogue import TYPES, type_name
from crmkit.core.i18n import t
from crmkit.settings.client import Direction, Level, Stage, TimeFrame
from crmkit.settings.editing import ClientYaml, EditError
from crmkit.settings.project import MAX_RETENTION_POINTS, CostCategory

__all__ = ["Field", "IntakeForm", "capabilities", "external_factors", "levers", "project_costs",
           "relationships", "retention"]

_WIDE = widgets.Layout(width="32em")
_LABEL = {"description_width": "14em"}


@dataclass
class Field:
    """One control of a form and the key of client.yaml it holds.

    ``read`` turns the control's value into the value written (None removes the key).
    """

    path: str
    control: widgets.ValueWidget
    read: Callable[[Any], Any] = lambda value: value
    error: widgets.HTML = field(default_factory=lambda: widgets.HTML(""))

    def __post_init__(self):
        self.initial = self.value

    @property
    def value(self) -> Any:
        return self.read(self.control.value)

    @property
    def touched(self) -> bool:
        return self.value != self.initial


def _channels(wb) -> list[str]:
    frame = wb.ws.interactions
    return [] if frame is None else sorted(frame["channel"].astype(str).unique())


def editor_of(wb) -> ClientYaml:
    """The workbook session's client.yaml editor, read afresh; one per kernel, so that two
    forms of one notebook (or two tabs of it) save on top of each other's changes.

    When the file changed since the session read it (another notebook saved a judgement), the
    session reads it again first, so that the form shows the file as it is."""
    editor = getattr(wb, "_intake_editor", None)
    if editor is None:
        editor = ClientYaml(wb.ws.path, lang=wb.lang)
        wb._intake_editor = editor
    else:
        editor.reload()
    if wb.ws.checksums.get("client.yaml") != editor.checksum:
        wb.reload_config()
    return editor


def _rerun(wb, cell_ids: Sequence[str]) -> list[str]:
    """Run the working copy's cells ``cell_ids`` again in this kernel; the ids that failed."""
    import nbformat
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or wb.notebook is None or not cell_ids:
        return []
    sources = {c.get("id"): c.source for c in nbformat.read(wb.notebook, as_version=4).cells}
    failed = []
    for cell_id in cell_ids:
        if cell_id not in sources:
            failed.append(cell_id)
            continue
        result = shell.run_cell(sources[cell_id], store_history=False)
        if not result.success:
            failed.append(cell_id)
    return failed


class IntakeForm:
    """A form of judgements with its "Save to client.yaml" button.

    Parameters
    ----------
    wb : crmkit.delivery.workbook.Workbook
    title : str
        Already translated.
    rows : list of (label, [Field, ...])
        One row of controls per item (a capability, a segment…).
    rerun : sequence of str
        Cell ids of the working copy recomputed after a save.
    """

    def __init__(self, wb, title: str, rows: list[tuple[str, list[Field]]],
                 rerun: Sequence[str] = ()):
        self.wb = wb
        self.editor = editor_of(wb)
        self.rows = [fields for _, fields in rows]
        self.fields = [f for fields in self.rows for f in fields]
        self.rerun = list(rerun)
        self.button = widgets.Button(description=t("intake_save", wb.lang),
                                     button_style="primary", icon="save",
                                     layout=widgets.Layout(width="auto"))
        self.button.add_class("crmkit-intake-save")
        self.message = widgets.HTML("")
        self.message.add_class("crmkit-intake-message")
        self.output = widgets.Output()
        self.button.on_click(self._clicked)
        boxes = [widgets.HTML(f"<b>{html.escape(title)}</b>")]
        for label, fields in rows:
            boxes.append(widgets.HTML(f"<span style='font-weight:600'>{html.escape(label)}</span>"))
            boxes.append(widgets.VBox([widgets.HBox([f.control, f.error]) for f in fields],
                                      layout=widgets.Layout(margin="0 0 0.6em 1em")))
        boxes += [widgets.HBox([self.button, self.message]), self.output]
        self.widget = widgets.VBox(boxes)
        self.widget.add_class("crmkit-intake")

    def changes(self) -> dict[str, Any]:
        """The keys of every row the consultant touched, as the form shows them.

        A row is written whole (a cost category's amounts and note together: listing a category
        in client.yaml replaces all its default amounts); an untouched row is not written at
        all, so a default stays a default.
        """
        return {f.path: f.value for fields in self.rows if any(f.touched for f in fields)
                for f in fields}

    def save(self) -> bool:
        """Validate and write the changes; on success recompute what depends on them."""
        lang = self.wb.lang
        for f in self.fields:
            f.error.value = ""
        try:
            backup = self.editor.save(self.changes(), channels=_channels(self.wb))
        except EditError as error:
            general = []
            for problem in error.problems:
                owners = self._owners(problem.message)
                for owner in owners:
                    owner.error.value = _error_html(problem.message)
                if not owners:
                    general.append(problem.message)
            self.message.value = _error_html(" ".join([t("intake_refused", lang), *general]))
            return False
        for f in self.fields:
            f.initial = f.value
        self.wb.reload_config()
        self.output.clear_output()
        with self.output:
            failed = _rerun(self.wb, self.rerun)
        text = t("intake_saved", lang, path=self.editor.path.name, backup=backup.name)
        for cell_id in failed:
            text += " " + t("intake_rerun_failed", lang, cell=cell_id)
        self.message.value = f"<span class='crmkit-intake-saved'>{html.escape(text)}</span>"
        return True

    def _owners(self, message: str) -> list[Field]:
        """The controls a refusal is about: the key it names (the first quoted name), or the
        controls under it whose own key the message names (a check over a whole section)."""
        found = re.search(r"'([^']+)'", message)
        if found is None:
            return []
        key = found.group(1)
        exact = [f for f in self.fields if f.path == key]
        if exact:
            return exact
        return [f for f in self.fields if f.path.startswith(key + ".")
                and re.search(rf"\b{re.escape(f.path.rsplit('.', 1)[-1])}\b",
                              message[found.end():])]

    def _clicked(self, _button) -> None:
        self.button.disabled = True
        try:
            self.save()
        finally:
            self.button.disabled = False

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _error_html(text: str) -> str:
    return f"<span class='crmkit-intake-error' style='color:#b3261e'>{html.escape(text)}</span>"


def _dropdown(label: str, options: Iterable[tuple[str, Any]], value: Any) -> widgets.Dropdown:
    options = list(options)
    if value not in [v for _, v in options]:
        value = options[0][1]
    return widgets.Dropdown(description=label, options=options, value=value, style=_LABEL,
                            layout=widgets.Layout(width="26em"))


def _note(label: str, value: Any) -> widgets.Textarea:
    return widgets.Textarea(description=label, value=str(value or ""), style=_LABEL,
                            layout=widgets.Layout(width="44em", height="3.2em"))


def _text_or_none(value: str) -> str | None:
    return value.strip() or None


def _keep_blank_note(value: str) -> str:
    return value.strip()


# --------------------------------------------------------------------------------------------
# Workbook 01: the context
# --------------------------------------------------------------------------------------------

def capabilities(wb, rerun: Sequence[str] = ()) -> IntakeForm:
    """The four internal capabilities, each scored 1 to 5 with a note (workbook 01)."""
    lang, internal = wb.lang, wb.config.context.internal
    scores = [(f"{i} · {t(_reading(i), lang)}", i) for i in range(1, 6)]
    rows = []
    for key in CAPABILITIES:
        capability = getattr(internal, key)
        base = f"context.internal.{key}"
        score = _dropdown(t("intake_score", lang), scores, capability.score)
        score.add_class(f"crmkit-intake-{key}-score")
        rows.append((t(f"capability_{key}", lang), [
            Field(f"{base}.score", score),
            Field(f"{base}.note", _note(t("intake_note", lang), capability.note),
                  _keep_blank_note)]))
    return IntakeForm(wb, t("intake_capabilities_title", lang), rows, rerun)


def _reading(score: int) -> str:
    if score <= 2:
        return "reading_limit"
    return "reading_strength" if score >= 4 else "reading_adequate"


def external_factors(wb, rerun: Sequence[str] = ()) -> IntakeForm:
    """The four external factors: impact, time frame, direction (and the industry's stage)."""
    lang, external = wb.lang, wb.config.context.external
    rows = []
    for key in EXTERNAL_FACTORS:
        factor = getattr(external, key)
        base = f"context.external.{key}"
        fields = [
            Field(f"{base}.impact", _dropdown(t("intake_impact", lang), [
                (t(f"impact_{v}", lang), v) for v in get_args(Level)], factor.impact)),
            Field(f"{base}.time_frame", _dropdown(t("intake_time_frame", lang), [
                (t(f"time_frame_{v}", lang), v) for v in get_args(TimeFrame)],
                factor.time_frame)),
            Field(f"{base}.direction", _dropdown(t("intake_direction", lang), [
                (t(f"direction_{v}", lang), v) for v in get_args(Direction)], factor.direction)),
        ]
        if key == "industry_maturity":
            fields.append(Field(f"{base}.stage", _dropdown(t("intake_stage", lang), [
                (t(f"stage_{v}", lang), v) for v in get_args(Stage)], factor.stage)))
        fields.append(Field(f"{base}.note", _note(t("intake_note", lang), factor.note),
                            _keep_blank_note))
        rows.append((t(f"factor_{key}", lang), fields))
    return IntakeForm(wb, t("intake_external_title", lang), rows, rerun)


# --------------------------------------------------------------------------------------------
# Workbooks 03-04: relationships and cost-benefit
# --------------------------------------------------------------------------------------------

def relationships(wb, names: Mapping[str, str], rerun: Sequence[str] = ()) -> IntakeForm:
    """Per segment: the relationship types it receives today, the one it expects, the fit.

    ``names`` is ``segment -> segment name`` (:func:`crmkit.relationships.inventory.segment_names`).
    An empty choice leaves the key out: the log, the survey or the catalogue decide.
    """
    lang, rel = wb.lang, wb.config.relationships
    types = [(type_name(k, lang), k) for k in TYPES]
    rows = []
    for segment, name in names.items():
        current = widgets.SelectMultiple(
            description=t("intake_current", lang), options=types,
            value=tuple(k for k in rel.current.get(segment, []) if k in TYPES),
            rows=min(6, len(types)), style=_LABEL, layout=widgets.Layout(width="32em"))
        expected = _dropdown(t("intake_expected", lang),
                             [(t("intake_from_data", lang), None), *types],
                             rel.expected.get(segment))
        rows.append((name, [
            Field(f"relationships.current.{segment}", current, lambda v: list(v) or None),
            Field(f"relationships.expected.{segment}", expected),
            Field(f"relationships.fit.{segment}",
                  _note(t("intake_fit", lang), rel.fit.get(segment)), _text_or_none)]))
    return IntakeForm(wb, t("intake_relationships_title", lang), rows, rerun)


def _number_or_text(value: str) -> float | str | None:
    """A typed figure as a number; text that is not one is passed on for the schema to name."""
    text = value.strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return value.strip()


def retention(wb, names: Mapping[str, str], rerun: Sequence[str] = ()) -> IntakeForm:
    """Per segment, the yearly retention the consultant knows better than the data (0 to <1)."""
    lang, known = wb.lang, wb.config.relationships.retention
    rows = []
    for segment, name in names.items():
        value = known.get(segment)
        box = widgets.Text(value="" if value is None else f"{value:g}",
                           placeholder=t("intake_from_data", lang),
                           layout=widgets.Layout(width="12em"))
        rows.append((name, [Field(f"relationships.retention.{segment}", box, _number_or_text)]))
    return IntakeForm(wb, t("intake_retention_title", lang), rows, rerun)


# --------------------------------------------------------------------------------------------
# Workbook 05: the CRM project
# --------------------------------------------------------------------------------------------

def project_costs(wb, project, rerun: Sequence[str] = ()) -> IntakeForm:
    """One-off and yearly amounts, and the note (the quote), of each cost category.

    ``project`` is the plan of workbook 05 (:func:`crmkit.planning.plan.build`): a category
    client.yaml does not list shows its default amounts, and is written only when touched (then
    whole, as listing a category replaces its defaults). A ``monthly`` amount typed in the file
    is left as it is.
    """
    from crmkit.planning import plan

    lang, costs = wb.lang, wb.config.crm_project.costs
    lines = plan.cost_lines(project, lang).drop_duplicates("category").set_index("category")
    rows = []
    for category in get_args(CostCategory):
        item = costs.get(category)
        line = lines.loc[category] if category in lines.index else None
        if item is not None:
            amounts = (item.one_off, item.yearly)
        elif line is not None:
            amounts = (line["one_off"], line["yearly"])
        else:
            amounts = (0.0, 0.0)
        base = f"crm_project.costs.{category}"
        one_off, yearly = (widgets.BoundedFloatText(description=t(key, lang), min=0, max=1e12,
                                                    value=float(amount or 0), style=_LABEL,
                                                    layout=widgets.Layout(width="24em"))
                           for key, amount in zip(("intake_one_off", "intake_yearly"), amounts,
                                                  strict=True))
        rows.append((t(f"plan_cat_{category}", lang), [
            Field(f"{base}.one_off", one_off, _whole_if_whole),
            Field(f"{base}.yearly", yearly, _whole_if_whole),
            Field(f"{base}.note", _note(t("intake_note", lang), item.note if item else ""),
                  _keep_blank_note)]))
    return IntakeForm(wb, t("intake_costs_title", lang), rows, rerun)


def _whole_if_whole(value: float) -> float | int:
    # 4500.0 is written back as 4500, as the consultant typed it
    return int(value) if float(value).is_integer() else float(value)


def levers(wb, rerun: Sequence[str] = ()) -> IntakeForm:
    """The main assumption of each lever, within the bounds the schema sets."""
    lang, lv = wb.lang, wb.config.crm_project.levers
    style = {"description_width": "18em"}
    layout = widgets.Layout(width="44em")
    points = widgets.FloatSlider(description=t("intake_retention_points", lang),
                                 min=-MAX_RETENTION_POINTS, max=MAX_RETENTION_POINTS, step=0.5,
                                 value=lv.retention.points, style=style, layout=layout)
    uplift = widgets.FloatSlider(description=t("intake_share_uplift", lang), min=-0.5, max=1.0,
                                 step=0.005, value=lv.share_of_customer.uplift,
                                 readout_format=".1%", style=style, layout=layout)
    win_back = widgets.FloatSlider(description=t("intake_win_back_rate", lang), min=0, max=1,
                                   step=0.01, value=lv.reactivation.win_back_rate,
                                   readout_format=".0%", style=style, layout=layout)
    consent = widgets.FloatSlider(description=t("intake_consent", lang), min=0, max=1, step=0.05,
                                  value=lv.consent, readout_format=".0%", style=style,
                                  layout=layout)

    def rounded(digits: int) -> Callable[[float], float]:
        return lambda value: round(float(value), digits)

    rows = [(t("lever_retention", lang), [Field("crm_project.levers.retention.points", points,
                                                rounded(2))]),
            (t("lever_share_of_customer", lang), [
                Field("crm_project.levers.share_of_customer.uplift", uplift, rounded(4))]),
            (t("lever_reactivation", lang), [
                Field("crm_project.levers.reactivation.win_back_rate", win_back, rounded(3))]),
            (t("lever_assumption_consent", lang), [Field("crm_project.levers.consent", consent,
                                                         rounded(3))])]
    return IntakeForm(wb, t("intake_levers_title", lang), rows, rerun)
