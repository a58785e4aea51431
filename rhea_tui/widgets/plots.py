"""MetricPlot: a plotext plot of a few named metric series, down-sampled to its width."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from rhea_engine.compare import Series, downsample, log_safe, unplottable
from rhea_tui.format import compact, epoch_ticks, value_ticks

# Columns plotext uses for the y tick labels and the frame; the rest is the drawing area.
_AXIS_COLUMNS = 10


# Series colours (RGB; Textual reduces them to 256 or 16 colours when the terminal needs it).
PALETTE = (
    (0, 135, 255),
    (95, 200, 95),
    (235, 70, 70),
    (240, 200, 40),
    (245, 140, 30),
    (175, 100, 230),
    (40, 200, 200),
    (210, 210, 210),
)


LOG_LABEL = "log"


def label_log_axis(drawing: Text) -> Text:
    """Write 'log' in the blank corner below the y tick labels (the x tick row)."""
    lines = drawing.split("\n")
    last = lines[-1] if lines and lines[-1].plain.strip() else None
    if last is None:
        return drawing
    blank = len(last.plain) - len(last.plain.lstrip(" "))
    if blank >= len(LOG_LABEL) + 1:
        corner = last[:blank]  # keeps the plot's colours, so no block of another background
        label = Text(LOG_LABEL.ljust(blank), style=corner.style, spans=corner.spans)
        label.stylize("italic", 0, len(LOG_LABEL))
        lines[-1] = label + last[blank:]
    return Text("\n").join(lines)


class MetricPlot(PlotextPlot):
    """A titled line plot of {label: [(epoch, value), ...]}; redrawn only when data changes."""

    DEFAULT_CSS = """
    MetricPlot {
        width: 1fr;
        height: 1fr;
        min-height: 5;
    }
    """

    def __init__(
        self,
        title: str,
        *,
        log_y: bool = True,
        legend: bool = True,
        id: str | None = None,  # noqa: A002 - Textual's own keyword
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.log_y = log_y
        self.legend = legend
        self.marker = "hd"
        self._series: dict[str, Series] = {}
        self._signature: tuple[object, ...] = ()
        self.draws = 0  # how many times the plot was built (tests and benchmarks read it)

    @property
    def series(self) -> dict[str, Series]:
        return self._series

    def set_series(self, series: Mapping[str, Series]) -> bool:
        """Replace the plotted series; refresh only if something changed. True if it did."""
        signature = tuple(
            (label, len(points), points[-1] if points else None, points[0] if points else None)
            for label, points in series.items()
        )
        if signature == self._signature:
            return False
        self._signature = signature
        self._series = {label: list(points) for label, points in series.items()}
        self.refresh()
        return True

    def point_count(self) -> int:
        return sum(len(points) for points in self._series.values())

    def header(self, width: int, notes: list[Text]) -> list[Text]:
        """The title, the axis scale and a colour key per series, wrapped to `width`."""
        title = Text(self.title, style="bold")
        items = []
        if self.legend:
            for index, label in enumerate(self._series):
                r, g, b = PALETTE[index % len(PALETTE)]
                items.append(Text.assemble(("▬ ", f"rgb({r},{g},{b})"), label))
        lines = [title]
        for item in [*items, *notes]:
            if lines[-1].cell_len + 2 + item.cell_len <= width:
                lines[-1].append("  ")
                lines[-1].append_text(item)
            else:
                lines.append(item)
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        return lines

    def render(self) -> RenderResult:
        width, height = self.size.width, self.size.height
        if width < 12 or height < 4:
            return Text(self.title, style="dim")
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        buckets = max(4, width - _AXIS_COLUMNS)
        xs: list[int] = []
        ys: list[float] = []
        marks: list[tuple[list[int], list[int]]] = []
        notes: list[Text] = []
        for index, (label, points) in enumerate(self._series.items()):
            color = PALETTE[index % len(PALETTE)]
            bad, low = unplottable(points, self.log_y)
            if bad or low:
                marks.append((bad, low))
                lost = [f"{len(bad)} non-finite"] if bad else []
                lost += [f"{len(low)} <= 0"] if low else []
                notes.append(Text(f"x {label}: {', '.join(lost)}", style="bold red"))
            shown = downsample(log_safe(points) if self.log_y else points, buckets)
            if not shown:
                continue
            epochs = [e for e, _ in shown]
            values = [v for _, v in shown]
            plt.plot(epochs, values, marker=self.marker, color=color)
            xs += (epochs[0], epochs[-1])
            ys += (min(values), max(values))
        header = self.header(width, notes)
        if not xs:
            empty = "(no data yet)" if not notes else "(no value can be drawn)"
            return Text("\n").join([*header, Text(empty, style="dim")])
        # values a log axis cannot hold are marked at its top (non-finite) or bottom (<= 0)
        for bad, low in marks:
            for epochs, level in ((bad, max(ys)), (low, min(ys))):
                if epochs:
                    plt.scatter(epochs, [level] * len(epochs), marker="x", color=(235, 70, 70))
                    xs += (min(epochs), max(epochs))
        plot_height = max(3, height - len(header))
        plt.plotsize(width, plot_height)
        plt._set_size(width, plot_height)
        if self.log_y:
            plt.yscale("log")
        plt.xticks([float(x) for x in epoch_ticks(min(xs), max(xs))])
        y_ticks = value_ticks(min(ys), max(ys), max(2, min(5, (plot_height - 3) // 2)), self.log_y)
        plt.yticks(y_ticks, [compact(v) for v in y_ticks])
        self.draws += 1
        drawing = Text.from_ansi(plt.build())
        if self.log_y:
            drawing = label_log_axis(drawing)
        return Text("\n").join([*header, drawing])
