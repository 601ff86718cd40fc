"""Results: groups of runs (one configuration, several seeds) and their statistics, the
text exports, the pivot of two spec paths, and comparisons of two groups.

``compare`` imports scipy when it is called, never at start-up.
"""

from kdtui.results.compare import CompareError, Comparison, compare_groups
from kdtui.results.exports import (
    EXPORT_HEAD,
    csv_table,
    export_cells,
    latex_escape,
    latex_table,
    markdown_table,
)
from kdtui.results.pivot import Pivot, PivotError, build_pivot, find_group, group_specs
from kdtui.results.stats import (
    ENDED_NAMES,
    ENDED_ORDER,
    PARTIAL_MARK,
    GroupRow,
    Metric,
    Stats,
    Summary,
    group_rows,
    mean_and_mark,
    run_selected_on,
    scales,
    selected_on_note,
    summarize,
)

__all__ = [
    "CompareError",
    "Comparison",
    "ENDED_NAMES",
    "ENDED_ORDER",
    "EXPORT_HEAD",
    "PARTIAL_MARK",
    "GroupRow",
    "Metric",
    "Pivot",
    "PivotError",
    "Stats",
    "Summary",
    "build_pivot",
    "compare_groups",
    "csv_table",
    "export_cells",
    "find_group",
    "group_rows",
    "group_specs",
    "latex_escape",
    "latex_table",
    "markdown_table",
    "mean_and_mark",
    "run_selected_on",
    "scales",
    "selected_on_note",
    "summarize",
]
