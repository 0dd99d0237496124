"""Tables that fit the terminal without cutting what a user pastes back.

rich shrinks every column of a table that is too wide and cuts the values
with an ellipsis, ids and costs included; an id cut that way cannot be pasted
into ``sessions show``. :func:`fit_table` lays the table out first: the
columns marked ``keep`` (ids, cost) keep their full width, the ``fold``
columns (names, paths, agents) are narrowed and wrap onto more lines, and
when that is not enough, whole columns are dropped in the order given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from rich.table import Table
from rich.text import Text

__all__ = ["Col", "fit_table"]

#: The narrowest a folded column gets (its header may be shorter).
FOLD_MIN: Final = 10
#: What a column adds besides its content: one space of padding on each side and one border.
_PER_COLUMN: Final = 3


@dataclass(frozen=True, slots=True)
class Col:
    """One column of a fitted table.

    Attributes:
        header: The column's title (also its name in ``drop``).
        justify: ``left`` or ``right``.
        keep: Never dropped nor narrowed (ids, costs): shown whole.
        fold: May be narrowed to :data:`FOLD_MIN`, its values wrapping onto more lines.
    """

    header: str
    justify: Literal["left", "right"] = "left"
    keep: bool = False
    fold: bool = False


def _natural(col: Col, cells: Sequence[str]) -> int:
    return max([Text.from_markup(c).cell_len for c in cells] + [len(col.header)], default=1)


def fit_table(
    cols: Sequence[Col],
    rows: Sequence[Sequence[str]],
    width: int,
    drop: Sequence[str] = (),
    *,
    title: str | None = None,
) -> Table:
    """A rich table of ``rows`` (markup strings) no wider than ``width`` where possible.

    Args:
        cols: The columns, in display order.
        rows: One markup string per column per row.
        width: The console width.
        drop: Headers of the columns to drop, first to last, while the table is too wide.
        title: The table's title.
    """
    natural = [_natural(c, [r[i] for r in rows]) for i, c in enumerate(cols)]
    least = [min(n, max(FOLD_MIN, len(c.header))) if c.fold else n for c, n in zip(cols, natural, strict=True)]
    shown = list(range(len(cols)))

    def needed(idx: Sequence[int], widths: Sequence[int]) -> int:
        return sum(widths[i] for i in idx) + _PER_COLUMN * len(idx) + 1

    dropped: list[int] = []
    for header in drop:
        if needed(shown, least) <= width:
            break
        gone = [i for i in shown if cols[i].header == header and not cols[i].keep]
        dropped += gone
        shown = [i for i in shown if i not in gone]
    # Dropping goes in a fixed order, so the last column dropped may have freed room for an
    # earlier, narrower one: take back what fits, the last dropped first.
    for i in reversed(dropped[:-1]):
        if needed(sorted([*shown, i]), least) <= width:
            shown = sorted([*shown, i])
    hidden = [cols[i].header for i in range(len(cols)) if i not in shown]
    # Narrow the folded columns only as far as needed, the widest first.
    widths = list(natural)
    excess = needed(shown, widths) - width
    while excess > 0:
        foldable = [i for i in shown if cols[i].fold and widths[i] > least[i]]
        if not foldable:
            break
        i = max(foldable, key=lambda j: widths[j])
        cut = min(excess, widths[i] - least[i])
        widths[i] -= cut
        excess -= cut
    # When even the kept columns do not fit (a very narrow terminal), rich must narrow them: they
    # then fold, every character kept over two lines, instead of being cut.
    squeezed = excess > 0
    # Never silent about what a narrow terminal hid.
    caption = f"not shown at {width} columns: {', '.join(hidden)} (a wider terminal or --json shows them)"
    table = Table(title=title, title_justify="left", caption=caption if hidden else None, caption_justify="left")
    for i in shown:
        c = cols[i]
        table.add_column(
            c.header,
            justify=c.justify,
            # An explicit width keeps rich from shrinking a column on its own (it would cut ids).
            width=widths[i] if c.fold and widths[i] < natural[i] else None,
            no_wrap=not (c.fold or (c.keep and squeezed)),
            overflow="fold",
        )
    for r in rows:
        table.add_row(*(_wrapped(r[i], widths[i]) if cols[i].fold and widths[i] < natural[i] else r[i] for i in shown))
    return table


#: Where a folded value may break: after a path's "/", a list's ", " or a space.
_BREAKS: Final = re.compile(r"(?<=/)|(?<=, )|(?<= )")


def _wrapped(cell: str, width: int) -> Text | str:
    """``cell`` broken into lines of at most ``width`` at its natural breaks, not mid-word.

    rich wraps only at spaces and folds anything else where the column ends
    (``/support/escalatio`` + ``n``); a segment longer than the column still folds.
    """
    text = Text.from_markup(cell)
    plain = text.plain
    if text.cell_len <= width:
        return cell
    cuts: list[int] = []
    line_start = last_break = 0
    for m in _BREAKS.finditer(plain):
        at = m.start()
        if at == 0:
            continue
        if at - line_start > width and last_break > line_start:
            cuts.append(last_break)
            line_start = last_break
        last_break = at
    if len(plain) - line_start > width and last_break > line_start:
        cuts.append(last_break)
    if not cuts:
        return text
    return Text("\n").join(text.divide(cuts))
