"""Demo data for `make run` (called by `manage.py setup_demo`): example scripts for the root account."""

from django.contrib.auth import get_user_model

from scripts_runner import services
from scripts_runner.models import Script

EXAMPLES = {
    "hello.py": "import sys\n\nprint('Hello from the sandbox')\nprint('arguments:', sys.argv[1:])\n"
                "print('this line goes to stderr', file=sys.stderr)\n",
    "ticker.py": "import time\n\n# Prints a line every half second until stopped: try the Stop button.\ni = 0\n"
                 "while True:\n    print(f'tick {i}', flush=True)\n    i += 1\n    time.sleep(0.5)\n",
    "pandas_summary.py": "import numpy as np\nimport pandas as pd\n\nrng = np.random.default_rng(7)\n"
                         "prices = pd.Series(100 + rng.standard_normal(250).cumsum(), name='price')\n"
                         "print(prices.describe().to_string())\n"
                         "print('daily returns std:', round(prices.pct_change().std(), 5))\n",
}


def demo_ensure(*, stdout) -> None:
    owners = list(get_user_model().objects.filter(is_superuser=True, is_active=True)[:1])
    if not owners:
        stdout.write("scripts_runner: no root account yet, no demo scripts\n")
        return
    owner = owners[0]
    created = 0
    for name, code in EXAMPLES.items():
        if not Script.objects.filter(owner=owner, name=name).exists():
            services.script_create(owner=owner, name=name, code=code.encode())
            created += 1
    stdout.write(f"scripts_runner: {created} demo script(s) created for {owner.username}\n")
