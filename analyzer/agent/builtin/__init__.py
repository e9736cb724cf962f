"""The built-in analyst: offline and deterministic, a small semantic parser over the file's own columns.

A question is read into a frame (`frame`: which columns and values it names, through normalized names,
synonyms and the profile's values; filters, groups, aggregate, ranking, time grain), the frame becomes one
intent or a question back (`intent`), and the intent becomes tool calls — the SQL it runs and the chart it
draws (`plans`, `charts`). Follow-ups are read against the questions before them (`provider`).
"""

from analyzer.agent.builtin.provider import BuiltinProvider

__all__ = ["BuiltinProvider"]
