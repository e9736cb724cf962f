"""Realistic POS export files for the demo host, the tests and the benchmark.

A day of one terminal becomes several versions per file type (partial
exports during the day, a full export, sometimes a re-export), in the dialect
of the branch kind: old branches write ';' cp1252 with DD/MM/YYYY and decimal
commas, new ones ',' UTF-8 with ISO dates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

DEPARTMENTS = ["Épicerie", "Boulangerie", "Crèmerie", "Fruits & légumes", "Boissons", "Hygiène", "Surgelés"]
METHODS = ["CASH", "CARD", "CARD", "CARD", "VOUCHER", "MOBILE"]


@dataclass
class DayData:
    sales: list[tuple]  # (tnsc, date, time, item, department, quantity, amount)
    payments: list[tuple]  # (tnsc, method, amount)


def make_day(*, rng: random.Random, pos: int, work_date: date, lines: int) -> DayData:
    sales, payments = [], []
    clock = datetime.combine(work_date, datetime.min.time()) + timedelta(hours=8)
    tx = 0
    while len(sales) < lines:
        tx += 1
        tnsc = f"{pos}{work_date:%y%j}{tx:05d}"
        clock += timedelta(seconds=rng.randint(20, 240))
        total = 0.0
        for _ in range(min(rng.randint(1, 6), lines - len(sales))):
            qty = rng.choice([1, 1, 1, 2, 3]) if rng.random() > 0.1 else round(rng.uniform(0.2, 2.5), 3)
            amount = round(qty * rng.uniform(0.5, 25), 2)
            total += amount
            item = f"{rng.randint(1, 99999):06d}"
            sales.append((tnsc, work_date, clock.time(), item, rng.choice(DEPARTMENTS), qty, amount))
        if rng.random() < 0.08:  # split payment
            part = round(total / 2, 2)
            payments += [(tnsc, "CASH", part), (tnsc, "CARD", round(total - part, 2))]
        else:
            payments.append((tnsc, rng.choice(METHODS), round(total, 2)))
    return DayData(sales=sales, payments=payments)


def _num(value: float, *, old: bool, places: int) -> str:
    text = f"{value:.{places}f}"
    return text.replace(".", ",") if old else text


def sales_text(rows: list[tuple], *, old: bool) -> str:
    if old:
        out = ["TNSC;DATE;HEURE;RAYON;ARTICLE;QTE;MONTANT"]
        for tnsc, day, clock, item, dept, qty, amount in rows:
            out.append(f"{tnsc};{day:%d/%m/%Y};{clock:%H:%M:%S};{dept};PLU{item};{_num(qty, old=True, places=3)};"
                       f"{_num(amount, old=True, places=2)}")
    else:
        out = ["tnsc,date,time,item_code,department,quantity,amount"]
        for tnsc, day, clock, item, dept, qty, amount in rows:
            dept_text = f'"{dept}"' if "," in dept else dept
            out.append(f"{tnsc},{day.isoformat()},{clock:%H:%M:%S},{item},{dept_text},{qty:.3f},{amount:.2f}")
    return "\r\n".join(out) + "\r\n"


def payments_text(rows: list[tuple], *, old: bool, work_date: date) -> str:
    if old:
        out = ["TNSC;DATE;MODE;MONTANT"]
        out += [f"{t};{work_date:%d/%m/%Y};{m};{_num(a, old=True, places=2)}" for t, m, a in rows]
    else:
        out = ["tnsc,payment_method,amount"]
        out += [f"{t},{m},{a:.2f}" for t, m, a in rows]
    return "\r\n".join(out) + "\r\n"


def encode(text: str, *, old: bool) -> bytes:
    return text.encode("cp1252" if old else "utf-8")


def day_files(*, rng: random.Random, pos: int, work_date: date, lines: int, old: bool,
              truncated_chance: float = 0.05, garbled_chance: float = 0.03) -> dict[str, bytes]:
    """All versions of one terminal's day: {file name: content}."""
    data = make_day(rng=rng, pos=pos, work_date=work_date, lines=lines)
    files: dict[str, bytes] = {}
    stamp = work_date.strftime("%Y%m%d")
    fractions = sorted(rng.sample([0.3, 0.5, 0.7, 0.85], k=rng.randint(1, 2))) + [1.0]
    for index, fraction in enumerate(fractions):
        hour = 12 + index * 3 if fraction < 1 else 23
        cut = max(1, int(len(data.sales) * fraction))
        sold = data.sales[:cut]
        paid_tx = {row[0] for row in sold}
        paid = [p for p in data.payments if p[0] in paid_tx]
        files[f"rd5000_{stamp}_{hour:02d}00.csv"] = encode(sales_text(sold, old=old), old=old)
        files[f"rd5500_{stamp}_{hour:02d}00.csv"] = encode(payments_text(paid, old=old, work_date=work_date), old=old)
    if rng.random() < truncated_chance:  # an upload cut off mid-line
        full = files[f"rd5000_{stamp}_2300.csv"]
        files[f"rd5000_{stamp}_2330.csv"] = full[: int(len(full) * rng.uniform(0.4, 0.95))]
    if rng.random() < garbled_chance:  # transfer garbage
        files[f"rd5000_{stamp}_0100.csv"] = bytes(rng.getrandbits(8) for _ in range(2000))
    return files


def write_day(root: Path, *, branch: str, pos: int, work_date: date, files: dict[str, bytes]) -> Path:
    folder = root / branch / str(pos) / work_date.strftime("%Y%m%d")
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder
