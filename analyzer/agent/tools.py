"""The analyst's tools: write_to_chat, generate_query, create_plot, finish (OpenAI function schemas)."""

from __future__ import annotations

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "write_to_chat",
            "description": "Write a short Markdown-free message to the user (explanations, findings).",
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string", "description": "The message"}},
                "required": ["text"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "generate_query",
            "description": (
                "Run one DuckDB SQL SELECT over the table `data` (the uploaded file) and show the result to the "
                "user as a table. Only a single SELECT/WITH statement is allowed. You receive the first rows."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "sql": {"type": "string", "description": "A single DuckDB SELECT statement over `data`"},
                    "explanation": {"type": "string", "description": "One line: what the query computes"},
                },
                "required": ["sql"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "create_plot",
            "description": (
                "Show a chart. `sql` is a DuckDB SELECT over `data` whose result rows become the chart data; "
                "`vega_lite_spec` is a Vega-Lite v6 spec WITHOUT `data` whose encodings use the result columns."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "sql": {"type": "string"},
                    "vega_lite_spec": {"type": "object"},
                },
                "required": ["title", "sql", "vega_lite_spec"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "finish",
            "description": "End the answer when the question has been answered.",
            "parameters": {"type": "object", "properties": {"summary": {"type": "string"}}},
        },
    },
]

TOOL_NAMES = {t["function"]["name"] for t in TOOLS}

SYSTEM_PROMPT = """You are a careful data analyst. Answer the user's questions about their data by calling tools:
- generate_query to compute facts with DuckDB SQL over the table `data` (a single SELECT; never guess numbers),
- create_plot for charts (Vega-Lite v6 spec without data; the rows of its SQL become the data),
- write_to_chat to explain the findings briefly in plain language,
- finish when done.
Quote column names with double quotes when they contain spaces or capitals. Keep results small (aggregate,
LIMIT). Never ask to run Python.
"""

AUTO_ANALYSIS_PROMPT = (
    "Give a short overview of this dataset (size, columns, notable nulls or values) and create two or three "
    "meaningful charts that show its main distributions or trends. Then finish."
)
