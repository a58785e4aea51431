"""MetricPlot: a plotext plot of a few named metric series, down-sampled to its width."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from rhea_engine.compare import Series, downsample, log_safe

# Columns plotext uses for the y tick labels and the frame; the rest is the drawing area.
_AXIS_COLUMNS = 10


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

    def render(self) -> RenderResult:
        width, height = self.size.width, self.size.height
        if width < 12 or height < 4:
            return Text(self.title, style="dim")
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.plotsize(width, height)
        plt._set_size(width, height)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt.title(self.title)
        buckets = max(4, width - _AXIS_COLUMNS)
        drawn = 0
        for label, points in self._series.items():
            shown = log_safe(points) if self.log_y else points
            shown = downsample(shown, buckets)
            if not shown:
                continue
            epochs = [e for e, _ in shown]
            values = [v for _, v in shown]
            plt.plot(epochs, values, label=label if self.legend else None, marker=self.marker)
            drawn += 1
        if drawn == 0:
            return Text(f"{self.title}\n(no data yet)", style="dim")
        if self.log_y:
            plt.yscale("log")
        self.draws += 1
        return Text.from_ansi(plt.build())
