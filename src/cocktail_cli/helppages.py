"""``--help`` pages printed from ``helppages.json`` without importing Typer or Rich.

Why: Typer and Rich took 280-350 ms for a ``--help`` page on the reference machine (importing them
about 100 ms, laying out Rich's option panels the rest; bench/startup.py), against a 0.3 s goal.
The pages only change when cocktail's options do, so :mod:`.helpmodel` records what Typer lays out
for each one (texts, styles, table settings) and this module lays it out again at the terminal's
width: the same page, character for character and style for style, in a few milliseconds
(tests/test_helppages.py compares the two at many widths, plain and in colour).

The layout below follows Rich's own rules for the few renderables Typer uses for a help page:
Text wrapping (rich/text.py, rich/_wrap.py), Table column widths (rich/table.py, rich/_ratio.py),
Columns (rich/columns.py), Padding and Panel. Only standard-library modules are imported.

Typer renders the page instead whenever this module could differ from it: the model is stale
(cocktail's CLI sources changed since ``python -m cocktail_cli.helpmodel``), the program is not
called ``cocktail``, the terminal is narrower than :data:`MIN_WIDTH` or its encoding not UTF-8, or an
environment variable that changes Rich's or Typer's output in ways not reproduced here is set
(:data:`FALLBACK_ENV`). ``COCKTAIL_RICH_HELP=1`` always has Typer render.

The pages keep the look of the Typer and Rich that recorded them (``recorded_with`` in the model):
with other versions installed, a help page still shows cocktail's current options, in that look.
"""

from __future__ import annotations

import json
import os
import sys
import zlib

MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helppages.json")
HELP_FLAGS = ("--help", "-h")
MIN_WIDTH = 30
# Set: not a help request at all (a shell's completion request runs a bare ``cocktail``), or Typer
# or Rich do something not reproduced here (a fixed width, Jupyter).
FALLBACK_ENV = ("_COCKTAIL_COMPLETE", "COCKTAIL_RICH_HELP", "TERMINAL_WIDTH", "JUPYTER_COLUMNS", "JUPYTER_LINES",
                "TTY_INTERACTIVE")

# Style = (attribute bits, bits that are set, colour SGR code or None), as rich.style.Style keeps them.
NULL_STYLE = (0, 0, None)
_SGR_OF_BIT = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "21", "51", "52", "53")


def is_help_request(args: list[str]) -> bool:
    """``cocktail --help`` or ``cocktail COMMAND --help`` (or ``-h``), nothing else."""
    return 1 <= len(args) <= 2 and args[-1] in HELP_FLAGS and all(not a.startswith("-") for a in args[:-1])


def source_digest(sources: list[str], package: str | None = None) -> str:
    """A checksum of the CLI's source files (paths relative to ``package``, by default this one):
    CRC-32 is enough to notice an edit, and its module loads in a fraction of hashlib's time."""
    package = package or os.path.dirname(os.path.abspath(__file__))
    checksum = 0
    for relative in sources:
        try:
            with open(os.path.join(package, relative), "rb") as f:
                data = f.read()
        except OSError:
            return "missing"
        checksum = zlib.crc32(data, zlib.crc32(f"{relative}:{len(data)}".encode(), checksum))
    return f"{checksum:08x}"


# ---------------------------------------------------------------------------------------- styles

def combine(under: tuple, over: tuple) -> tuple:
    """``under + over`` as Rich adds styles: what ``over`` sets wins."""
    if over is NULL_STYLE:
        return under
    bits = (under[0] & ~over[1]) | (over[0] & over[1])
    return (bits, under[1] | over[1], over[2] if over[2] is not None else under[2])


def sgr(style: tuple, colour: bool) -> str:
    bits = style[0] & style[1]
    codes = [code for i, code in enumerate(_SGR_OF_BIT) if bits & (1 << i)]
    if colour and style[2] is not None:
        codes.append(style[2])
    return ";".join(codes)


# ------------------------------------------------------------------------------------------ text

class Text:
    """A text of the model: its characters, each character's style, and its own layout settings."""

    __slots__ = ("plain", "styles", "justify", "overflow", "no_wrap")

    def __init__(self, data: dict, styles: list[tuple]):
        self.plain = plain = data["plain"]
        base = styles[data["style"]]
        per_char = [base] * len(plain)
        for start, end, index in data["spans"]:  # later spans win, as in rich.text.Text.render
            over = styles[index]
            for i in range(start, min(end, len(plain))):
                per_char[i] = combine(per_char[i], over)
        self.styles = per_char
        self.justify, self.overflow, self.no_wrap = data["justify"], data["overflow"], data["no_wrap"]

    def measure(self) -> tuple[int, int]:
        """Narrowest (longest word) and widest (longest line) it can be laid out in."""
        lines = self.plain.splitlines()
        widest = max((len(line) for line in lines), default=0)
        words = self.plain.split()
        return (max(len(w) for w in words) if words else widest), widest


# A rendered line is a list of (characters, styles) pieces: ``styles`` is one style for the whole
# piece (a tuple) or a list with one style per character.

def _line_width(line: list) -> int:
    return sum(len(text) for text, _ in line)


def _pad_line(line: list, width: int, style: tuple = NULL_STYLE) -> list:
    missing = width - _line_width(line)
    return line + [(" " * missing, style)] if missing > 0 else line


def _words(text: str):
    """(start, end) of each word with the whitespace around it, as rich._wrap.words (r"\\s*\\S+\\s*")."""
    n, position = len(text), 0
    while True:
        i = position
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            return
        while i < n and not text[i].isspace():
            i += 1
        while i < n and text[i].isspace():
            i += 1
        yield position, i
        position = i


def _divide_line(text: str, width: int, fold: bool) -> list[int]:
    """Offsets to break ``text`` at so each line fits ``width`` (rich._wrap.divide_line)."""
    breaks: list[int] = []
    offset = 0
    for start, end in _words(text):
        word = text[start:end]
        word_length = len(word.rstrip())
        if width - offset >= word_length:
            offset += len(word)
        elif word_length > width:
            if fold:
                chunks = [word[i:i + width] for i in range(0, len(word), width)] if width > 0 else [word]
                for n, chunk in enumerate(chunks):
                    if start:
                        breaks.append(start)
                    if n == len(chunks) - 1:
                        offset = len(chunk)
                    else:
                        start += len(chunk)
            else:
                if start:
                    breaks.append(start)
                offset = len(word)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    return breaks


def _truncate(chars: str, styles: list, width: int, overflow: str, pad: bool) -> tuple[str, list]:
    """rich.text.Text.truncate on one line."""
    length = len(chars)
    if overflow != "ignore":
        if length > width:
            if overflow == "ellipsis":
                keep = max(width - 1, 0)
                chars, styles = chars[:keep] + "…", styles[:keep] + styles[keep:keep + 1]
            else:
                chars, styles = chars[:width], styles[:width]
        if pad and length < width:
            chars, styles = chars + " " * (width - length), styles + [NULL_STYLE] * (width - length)
    return chars, styles


def wrap(text: Text, width: int, justify: str | None, overflow: str | None, no_wrap: bool | None) -> list[list]:
    """The lines of ``text`` laid out ``width`` wide (rich.text.Text.__rich_console__ and wrap)."""
    justify = text.justify or justify or "default"
    overflow = text.overflow or overflow or "fold"
    no_wrap = text.no_wrap if text.no_wrap is not None else bool(no_wrap)
    plain, styles = text.plain, text.styles
    lines: list[list] = []
    start = 0
    pieces = plain.split("\n")
    for piece in pieces:
        end = start + len(piece)
        if no_wrap:
            ranges = [(start, end)]
        else:
            bounds = [0, *_divide_line(piece, width, overflow == "fold"), len(piece)]
            ranges = []
            for a, b in zip(bounds, bounds[1:]):
                a, b = start + a, start + b
                if b - a > width:  # Text.rstrip_end: drop trailing whitespace beyond the width
                    spaces = len(plain[a:b]) - len(plain[a:b].rstrip())
                    b -= min(spaces, b - a - width)
                ranges.append((a, b))
        for a, b in ranges:
            chars, char_styles = plain[a:b], styles[a:b]
            if justify == "left":
                chars, char_styles = _truncate(chars, char_styles, width, overflow, pad=True)
            chars, char_styles = _truncate(chars, char_styles, width, overflow, pad=False)
            lines.append([(chars, char_styles)])
        start = end + 1
    return lines


# ----------------------------------------------------------------------------------------- cells

def _measure(cell, max_width: int) -> tuple[int, int]:
    """rich.measure.Measurement.get for a table cell's content."""
    if max_width < 1:
        return 0, 0
    if isinstance(cell, Text):
        low, high = cell.measure()
        low, high = max(0, min(low, high)), max(0, high)
        low, high = min(low, max_width), min(high, max_width)
        if high < 1:
            return 0, 0
        return min(low, high), high
    return 0, max_width  # Columns has no measure of its own


def _measure_padded(cell, left: int, right: int, max_width: int) -> tuple[int, int]:
    """rich.padding.Padding.__rich_measure__."""
    extra = left + right
    if max_width - extra < 1:
        return max_width, max_width
    low, high = _measure(cell, max_width)
    return min(low + extra, max_width), min(high + extra, max_width)


def _render_cell(cell, width: int, justify, overflow, no_wrap) -> list[list]:
    if isinstance(cell, Text):
        return wrap(cell, width, justify, overflow, no_wrap)
    return _render_columns(cell, width)


class Column:
    __slots__ = ("cells", "style", "justify", "overflow", "no_wrap", "width", "ratio")

    def __init__(self, cells, style=NULL_STYLE, justify="left", overflow="ellipsis", no_wrap=False, width=None,
                 ratio=None):
        self.cells, self.style, self.justify, self.overflow = cells, style, justify, overflow
        self.no_wrap, self.width, self.ratio = no_wrap, width, ratio


def _ratio_reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    ratios = [r if m else 0 for r, m in zip(ratios, maximums)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining, result = total, []
    for ratio, maximum, value in zip(ratios, maximums, values):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            result.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            result.append(value)
    return result


def _ratio_distribute(total: int, ratios: list[int], minimums: list[int] | None = None) -> list[int]:
    if minimums:
        ratios = [r if m else 0 for r, m in zip(ratios, minimums)]
    total_ratio = sum(ratios)
    remaining, result = total, []
    for ratio, minimum in zip(ratios, minimums or [0] * len(ratios)):
        distributed = max(minimum, -(-ratio * remaining // total_ratio)) if total_ratio > 0 else remaining
        result.append(distributed)
        total_ratio -= ratio
        remaining -= distributed
    return result


def _collapse(widths: list[int], wrapable: list[bool], max_width: int) -> list[int]:
    """rich.table.Table._collapse_widths: shrink the widest wrapable columns first."""
    total = sum(widths)
    excess = total - max_width
    if any(wrapable):
        while total and excess > 0:
            widest = max(w for w, ok in zip(widths, wrapable) if ok)
            second = max(w if ok and w != widest else 0 for w, ok in zip(widths, wrapable))
            difference = widest - second
            ratios = [1 if (w == widest and ok) else 0 for w, ok in zip(widths, wrapable)]
            if not any(ratios) or not difference:
                break
            widths = _ratio_reduce(excess, ratios, [min(excess, difference)] * len(widths), widths)
            total = sum(widths)
            excess = total - max_width
    return widths


def render_table(columns: list[Column], max_width: int, expand: bool, collapse_padding: bool) -> list[list]:
    """A borderless table with padding (0, 1) and no padding at its edges, as rich.table.Table."""
    n = len(columns)

    def pads(index: int) -> tuple[int, int]:  # (left, right) of every cell in a column
        left, right = (0 if collapse_padding or index == 0 else 1), (0 if index == n - 1 else 1)
        return left, right

    def padding_width(index: int) -> int:  # Table._get_padding_width
        return sum(pads(index))

    def measure_column(index: int, width: int) -> tuple[int, int]:
        if width < 1:
            return 0, 0
        column = columns[index]
        if column.width is not None:
            size = column.width + padding_width(index)
            return min(size, width), min(size, width)
        left, right = pads(index)
        sizes = [_measure_padded(cell, left, right, width) for cell in column.cells]
        low = max((s[0] for s in sizes), default=1)
        high = max((s[1] for s in sizes), default=width)
        return min(low, width), min(high, width)

    ranges = [measure_column(i, max_width) for i in range(n)]
    widths = [high or 1 for _, high in ranges]
    if expand:
        ratios = [c.ratio or 0 for c in columns if c.ratio is not None]
        if any(ratios):
            fixed = [0 if c.ratio is not None else high for (_, high), c in zip(ranges, columns)]
            minimums = [(c.width or 1) + padding_width(i) for i, c in enumerate(columns) if c.ratio is not None]
            flexible = iter(_ratio_distribute(max_width - sum(fixed), ratios, minimums))
            widths = [fixed[i] + next(flexible) if c.ratio is not None else widths[i] for i, c in enumerate(columns)]
    table_width = sum(widths)
    if table_width > max_width:
        widths = _collapse(widths, [c.width is None and not c.no_wrap for c in columns], max_width)
        table_width = sum(widths)
        if table_width > max_width:
            widths = _ratio_reduce(table_width - max_width, [1] * n, widths, widths)
            table_width = sum(widths)
        widths = [measure_column(i, w)[1] or 0 for i, w in enumerate(widths)]
        table_width = sum(widths)
    if table_width < max_width and expand:
        widths = [w + extra for w, extra in zip(widths, _ratio_distribute(max_width - table_width, widths))]

    rows = max((len(c.cells) for c in columns), default=0)
    out: list[list] = []
    for r in range(rows):
        cells = []
        for i, column in enumerate(columns):
            left, right = pads(i)
            inner = widths[i] - left - right
            lines = _render_cell(column.cells[r], inner, column.justify, column.overflow, column.no_wrap)
            if column.style is not NULL_STYLE:
                lines = [[(text, _under(column.style, styles)) for text, styles in line] for line in lines]
            cells.append([[(" " * left, column.style), *_pad_line(line, inner, column.style), (" " * right, column.style)]
                          for line in lines])
        height = max(len(lines) for lines in cells)
        for line_no in range(height):
            line = []
            for i, lines in enumerate(cells):
                line.extend(lines[line_no] if line_no < len(lines) else [(" " * widths[i], columns[i].style)])
            out.append(line)
    return out


def _under(style: tuple, styles) -> list | tuple:
    """``styles`` (one or per character) with ``style`` beneath them."""
    if isinstance(styles, tuple):
        return combine(style, styles)
    return [combine(style, s) for s in styles]


class Columns:
    """rich.columns.Columns with padding (0, 1): items side by side while they fit, else stacked."""

    __slots__ = ("items",)

    def __init__(self, items: list[Text]):
        self.items = items


def _render_columns(columns: Columns, width: int) -> list[list]:
    items = columns.items
    if not items:
        return []
    item_widths = [_measure(item, width)[1] for item in items]
    count = len(items)

    def laid_out(count: int):
        cells = list(zip(item_widths, items))
        if len(items) % count:
            cells += [(0, None)] * (count - len(items) % count)
        return cells

    while count > 1:
        widths: dict[int, int] = {}
        column_no = 0
        for item_width, _ in laid_out(count):
            widths[column_no] = max(widths.get(column_no, 0), item_width)
            if sum(widths.values()) + (len(widths) - 1) > width:
                count = len(widths) - 1
                break
            column_no = (column_no + 1) % count
        else:
            break
    cells = [item for _, item in laid_out(count)]
    empty = Text({"plain": "", "style": 0, "spans": [], "justify": None, "overflow": None, "no_wrap": None},
                 [NULL_STYLE])
    grid = [Column([empty if cell is None else cell for cell in cells[c::count]]) for c in range(count)]
    return render_table(grid, width, expand=False, collapse_padding=True)


# ----------------------------------------------------------------------------------------- pages

class Page:
    def __init__(self, model: dict, name: str):
        # The empty style is NULL_STYLE itself: layout skips combining with it by identity.
        styles = [NULL_STYLE if tuple(s) == NULL_STYLE else tuple(s) for s in model["styles"]]
        self.styles = styles

        def text(data):
            return Text(data, styles)

        def cell(data):
            return Columns([text(t) for t in data["columns"]]) if "columns" in data else text(data)

        self.blocks = []
        for block in model["pages"][name]:
            kind, style = block["kind"], styles[block["style"]]
            if kind == "usage":
                self.blocks.append((kind, style, text(block["text"])))
            elif kind == "description":
                self.blocks.append((kind, style, [text(t) for t in block["texts"]]))
            else:
                columns = [
                    Column([cell(c) for c in col["cells"]], styles[col["style"]], col["justify"], col["overflow"],
                           col["no_wrap"], col["width"], col["ratio"])
                    for col in block["table"]["columns"]
                ]
                self.blocks.append((kind, style, (block["title"], styles[block["border_style"]], columns)))

    def lines(self, width: int) -> list[list]:
        """The page ``width`` characters wide, as lines of (characters, styles) pieces."""
        out: list[list] = []
        for kind, style, content in self.blocks:
            block: list[list] = []
            if kind == "usage":  # Padding(text, 1)
                blank = [(" " * width, NULL_STYLE)]
                block.append(blank)
                for line in wrap(content, width - 2, None, None, None):
                    block.append([(" ", NULL_STYLE), *_pad_line(line, width - 2), (" ", NULL_STYLE)])
                block.append(blank)
            elif kind == "description":  # Padding(Align(Group(texts), pad=False), (0, 1, 1, 1))
                for text in content:
                    for line in wrap(text, width - 2, None, None, None):
                        block.append([(" ", NULL_STYLE), *_pad_line(line, width - 2), (" ", NULL_STYLE)])
                block.append([(" " * width, NULL_STYLE)])
            else:  # Panel(Table, title), padding (0, 1), rounded box
                title, border, columns = content
                label = f" {title} "[: width - 4]
                block.append([("╭─", border), (label + "─" * (width - 4 - len(label)), border), ("─╮", border)])
                for line in render_table(columns, width - 4, expand=True, collapse_padding=False):
                    block.append([("│", border), (" ", NULL_STYLE), *_pad_line(line, width - 4), (" ", NULL_STYLE),
                                  ("│", border)])
                block.append([("╰" + "─" * (width - 2) + "╯", border)])
            if style is not NULL_STYLE:
                block = [[(text, _under(style, styles)) for text, styles in line] for line in block]
            out.extend(block)
        return out

    def render(self, width: int, colour: bool = False, no_color: bool = False) -> str:
        """The page as text: plain, or with SGR codes as Rich writes them to a terminal."""
        lines = self.lines(width)
        if not colour:
            return "".join("".join(text for text, _ in line) + "\n" for line in lines)
        out = []
        for line in lines:
            for text, styles in line:
                per_char = [styles] * len(text) if isinstance(styles, tuple) else styles
                i = 0
                while i < len(text):
                    j = i + 1
                    while j < len(text) and per_char[j] == per_char[i]:
                        j += 1
                    codes = sgr(per_char[i], not no_color)
                    out.append(f"\x1b[{codes}m{text[i:j]}\x1b[0m" if codes else text[i:j])
                    i = j
            out.append("\n")
        return "".join(out)


# ---------------------------------------------------------------------------------- the terminal

def terminal(environ=os.environ, stdout=None) -> tuple[int, bool, bool] | None:
    """(width, colour, no_color) as Typer's Rich console would choose them, or None where this
    module does not reproduce Rich's choice."""
    stdout = sys.stdout if stdout is None else stdout
    if os.name == "nt" or stdout is None or any(name in environ for name in FALLBACK_ENV):
        return None
    encoding = (getattr(stdout, "encoding", "utf-8") or "utf-8").lower()
    if not encoding.startswith("utf"):
        return None  # Rich would draw the boxes in ASCII
    # Typer forces a terminal for these (typer/rich_utils.py FORCE_TERMINAL), else Rich decides.
    force = True if (environ.get("GITHUB_ACTIONS") or environ.get("FORCE_COLOR") or environ.get("PY_COLORS")) else None
    if environ.get("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    if force is not None:
        is_terminal = force
    elif environ.get("TTY_COMPATIBLE", "") in ("0", "1"):
        is_terminal = environ["TTY_COMPATIBLE"] == "1"
    elif "FORCE_COLOR" in environ:
        is_terminal = environ["FORCE_COLOR"] != ""
    else:
        try:
            is_terminal = bool(stdout.isatty())
        except (AttributeError, ValueError):
            is_terminal = False
    dumb = is_terminal and environ.get("TERM", "").lower() in ("dumb", "unknown")
    columns, lines = environ.get("COLUMNS"), environ.get("LINES")
    fixed = int(columns) if columns is not None and columns.isdigit() else None
    if fixed is not None and lines is not None and lines.isdigit():
        width = fixed
    elif dumb:
        width = 80
    else:
        width = None
        for fd in (0, 1, 2):
            try:
                width = os.get_terminal_size(fd).columns
                break
            except (AttributeError, ValueError, OSError):
                pass
        width = (fixed if fixed is not None else width) or 80
    if width < MIN_WIDTH:
        return None
    return width, is_terminal and not dumb, environ.get("NO_COLOR", "") != ""


def program_name() -> str:
    """The name Click puts in the usage line (click.utils._detect_program_name)."""
    main = sys.modules.get("__main__")
    path = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if getattr(main, "__package__", None) in (None, ""):
        return os.path.basename(path)
    return "python -m " + main.__package__  # not "cocktail": Typer renders


def load_model(path: str = MODEL_PATH) -> dict | None:
    """The model, or None when it is missing, unreadable or older than the CLI's sources."""
    try:
        with open(path, encoding="utf-8") as f:
            model = json.load(f)
        if model["digest"] != source_digest(model["sources"]):
            return None
        return model
    except (OSError, ValueError, KeyError, TypeError):
        return None


def show(args: list[str]) -> int | None:
    """Print the page ``args`` ask for and return the exit status Click would give it: 0 for
    ``[COMMAND] --help``, 2 for a bare command that answers with its help (``cocktail``,
    ``cocktail separate``). None, having printed nothing, for anything else and wherever Typer
    must render (see the module's docstring)."""
    asks_help = is_help_request(args)
    if not asks_help and not (len(args) <= 1 and all(not a.startswith("-") for a in args)):
        return None
    state = terminal()
    if state is None:
        return None
    model = load_model()
    if model is None or program_name() != model["prog"]:
        return None
    name = args[0] if len(args) == (2 if asks_help else 1) else ""
    if name not in model["pages"] or not (asks_help or name in model["no_args_help"]):
        return None
    width, colour, no_color = state
    page = Page(model, name).render(width, colour, no_color)
    # --help: Click echoes the text Typer returns after Rich has printed the page, an empty line.
    try:
        sys.stdout.write(page + "\n" if asks_help else page)
        sys.stdout.flush()
    except BrokenPipeError:  # ``cocktail --help | head -1``: the reader has what it wanted
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())  # so the exit's own flush stays quiet
    return 0 if asks_help else 2
