"""Reading POS export files with a branch's parser config.

Pure functions (no database): the pipeline, the "test parse" page and the benchmark share them.
- `config`: the parser config of a branch (defaults per kind, overrides, validation);
- `lines`: splitting a file into numbered data lines and their fields (Arrow);
- `rows`: parsing rd5000 (sales) and rd5500 (payments) files into rows and rejected rows, and joining them;
- `names`: file names (type, safety).
"""

from etl.parsing.config import (  # noqa: F401
    FILE_TYPES, PARSER_VERSION, PAYMENTS, SALES, default_config, effective_config, validate_config,
)
from etl.parsing.names import filetype_of, is_safe_name  # noqa: F401
from etl.parsing.rows import (  # noqa: F401
    ParseResult, Rejected, combine, count_data_rows, decode, parse_payments, parse_sales, payment_methods,
)
