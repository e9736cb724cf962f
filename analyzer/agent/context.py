"""What the model is told about the data: schema, a few sample rows, the column profile — never the whole file."""

from __future__ import annotations

import json
from dataclasses import dataclass

from analyzer import conf


@dataclass
class DataContext:
    filename: str
    data_path: str
    row_count: int
    columns: list[dict]
    profile: list[dict]
    sample_rows: list[dict]
    detection: dict

    @classmethod
    def for_session(cls, session, *, data_path: str) -> DataContext:
        return cls(
            filename=session.filename,
            data_path=data_path,
            row_count=session.row_count,
            columns=list(session.columns or []),
            profile=list(session.profile or []),
            sample_rows=list(session.preview or [])[: conf.SAMPLE_ROWS_FOR_MODEL],
            detection=dict(session.detection or {}),
        )

    def profile_of(self, name: str) -> dict:
        for entry in self.profile:
            if entry["name"] == name:
                return entry
        return {}

    def profile_without_rows(self) -> list[dict]:
        """The profile with nothing a single row holds: counts, ranges and means, and the value set of a
        category column (up to 50 values); no most-frequent values of a free-text column."""
        kept = []
        for entry in self.profile:
            entry = {k: v for k, v in entry.items() if k not in ("top_values", "values")}
            if entry.get("kind") == "text":
                entry.pop("min", None), entry.pop("max", None)
            source = self.profile_of(entry["name"])
            if "values" in source:
                entry["values"] = source["values"]
            kept.append(entry)
        return kept

    def describe_for_model(self, *, send_rows: bool = True) -> str:
        schema = "\n".join(f"- {c['name']} ({c['type']})" for c in self.columns)
        if not send_rows:
            profile = json.dumps(self.profile_without_rows(), default=str)[:6000]
            return (
                f"The user uploaded `{self.filename}` with {self.row_count} rows. It is available in DuckDB as the "
                f"table `data` with these columns:\n{schema}\n\nColumn profile (JSON): {profile}\n\n"
                "You are not shown any rows of the file, nor the rows your queries return (you get their columns "
                "and row count; the user sees the rows). Let the results speak: do not state values you have not "
                "seen."
            )
        profile = json.dumps(self.profile, default=str)[:6000]
        sample = json.dumps(self.sample_rows, default=str)[:4000]
        return (
            f"The user uploaded `{self.filename}` with {self.row_count} rows. It is available in DuckDB as the "
            f"table `data` with these columns:\n{schema}\n\nColumn profile (JSON): {profile}\n\n"
            f"First rows (JSON): {sample}"
        )
