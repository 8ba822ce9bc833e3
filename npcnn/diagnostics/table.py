"""Table: rows of named columns that print as markdown and save as CSV.

Every instrument and benchmark in ``npcnn.diagnostics`` returns one, so a measurement can be
printed in a terminal, pasted into the docs, or loaded into a spreadsheet without extra code.
"""

import csv
import io
import math
import pathlib


def _format(value, floatfmt):
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return format(value, floatfmt)
    return str(value)


class Table:
    """An ordered list of rows (dicts) with fixed columns.

    ``table.column("grad_input_norm")`` gives one column as a list, ``table[i]`` one row,
    ``str(table)`` / ``table.to_markdown()`` a markdown table, ``table.to_csv(path)`` a CSV file.
    """

    def __init__(self, columns, rows=()):
        self.columns = list(columns)
        self.rows = []
        for row in rows:
            self.append(row)

    def append(self, row):
        """Add ``row`` (a dict; missing columns become None, unknown ones raise KeyError)."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"Table: row has columns {sorted(unknown)} not in {self.columns}")
        self.rows.append({c: row.get(c) for c in self.columns})

    def column(self, name):
        """The values of column ``name``, one per row, as a list."""
        if name not in self.columns:
            raise KeyError(f"Table: no column {name!r}; columns are {self.columns}")
        return [row[name] for row in self.rows]

    def where(self, **conditions):
        """The rows whose columns equal ``conditions``, as a new Table."""
        return Table(self.columns, [r for r in self.rows if all(r[k] == v for k, v in conditions.items())])

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def to_markdown(self, floatfmt=".3g"):
        """The table as markdown text; floats formatted with ``floatfmt``, NaN shown as a dash."""
        lines = ["| " + " | ".join(self.columns) + " |",
                 "|" + "|".join(" --- " for _ in self.columns) + "|"]
        for row in self.rows:
            lines.append("| " + " | ".join(_format(row[c], floatfmt) for c in self.columns) + " |")
        return "\n".join(lines)

    def to_csv(self, path=None):
        """The table as CSV text (full float precision); also written to ``path`` when given."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({c: ("" if row[c] is None else row[c]) for c in self.columns})
        text = buffer.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def save(self, directory, stem, title=None, floatfmt=".3g"):
        """Write ``stem.md`` (markdown, under an optional ``# title``) and ``stem.csv`` into
        ``directory`` (created if needed); returns the two paths."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        md, csv_path = directory / f"{stem}.md", directory / f"{stem}.csv"
        heading = f"# {title}\n\n" if title else ""
        md.write_text(heading + self.to_markdown(floatfmt) + "\n", encoding="utf-8")
        self.to_csv(csv_path)
        return md, csv_path

    def __str__(self):
        return self.to_markdown()

    def __repr__(self):
        return f"Table({len(self.rows)} rows x {len(self.columns)} columns: {self.columns})"
