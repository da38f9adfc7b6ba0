#!/usr/bin/env python
"""Residents import benchmark: validate + import time and SQL query count for N residents and N relatives.

    .venv/bin/python benchmarks/import_benchmark.py                       # N = 10000, SQLite
    .venv/bin/python benchmarks/import_benchmark.py --residents 1000 10000
    .venv/bin/python benchmarks/import_benchmark.py --database-url postgres://postgres@127.0.0.1:5432/sejour_bench

Each run builds its own throw-away database (a temporary SQLite file, or the given PostgreSQL
database, dropped and re-created), seeds the demo configuration (no residents), writes a residents
file with every column filled (TIL-HP / TIL-HT / VER-HP, GIR mix, payers CD69 / CD57 / MUTSAN, 10 %
social aid, half by direct debit with distinct valid IBANs, a third with an existing RUM) and a
relatives file (one relative per resident, invoice recipient, every third one paying), then times:

- validate: ``residents_import(dry_run=True)`` (read both XLSX files + every check);
- import:   ``residents_import()`` (validate again + bulk creation in one transaction).

Target (issue 4): 10 000 residents + 10 000 relatives validated and imported in under 60 s with a
bounded number of queries (independent of N up to the bulk batch size).
(The absences import has its own script: benchmarks/absences_benchmark.py.)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import report_row, run_children, throwaway_environment


def fr_iban(n: int) -> str:
    bank, branch, account = "30006", "00001", f"{n:011d}"
    key = 97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97)
    bban = f"{bank}{branch}{account}{key:02d}"
    number = int("".join(str(int(c, 36)) for c in bban + "FR00"))
    return f"FR{98 - number % 97:02d}{bban}"


def nir(n: int, female: bool, year: int, month: int) -> str:
    body = f"{2 if female else 1}{year % 100:02d}{month:02d}69123{n % 1000:03d}"
    return f"{body}{97 - int(body) % 97:02d}"


def build_files(directory: Path, n: int) -> tuple[Path, Path]:
    from datetime import date

    from openpyxl import Workbook

    from imports.services.residents_import import RELATIVE_COLUMNS, RESIDENT_COLUMNS

    headers = [c.name for c in RESIDENT_COLUMNS]
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Résidents")
    sheet.append(headers)
    sections = [("TIL-HP", "STD", "CD69"), ("TIL-HP", "STD-TV", "CD69"), ("TIL-HT", "HT", "CD69"),
                ("VER-HP", "STD", "CD57"), ("VER-HP", "STD-TV", "MUTSAN")]
    modes = ["CHEQUE", "VIREMENT", "PRELEVEMENT", "PRELEVEMENT"]
    for i in range(1, n + 1):
        alias, package, payer = sections[i % len(sections)]
        female = i % 3 != 0
        birth = date(1930 + i % 20, 1 + i % 12, 1 + i % 28)
        mode = modes[i % 4]
        social_aid = 1 if (i % 10 == 0 and payer != "MUTSAN") else 0
        debit = mode == "PRELEVEMENT"
        has_rum = debit and i % 3 == 0
        row = {
            "NUMERO": i, "SECTION": alias, "REF_EXTERNE": f"BENCH-{i:06d}", "CIVILITE": "MME" if female else "M",
            "NOM": ["Müller-Élodie d'Arçy", "Lefèvre", "Martin", "Nguyễn", "O'Connor"][i % 5], "NOM_NAISSANCE": "",
            "PRENOM": ["Hélène", "Zoé", "Jean", "Anaïs", "Émile"][i % 5], "DATE_NAISSANCE": birth,
            "LIEU_NAISSANCE": "Lyon", "NIR": nir(i, female, birth.year, birth.month),
            "ADRESSE": f"{i % 90 + 1} rue de la République", "CODE_POSTAL": "69002", "VILLE": "Lyon",
            "TELEPHONE": "04 78 00 00 00", "EMAIL": f"resident{i}@example.org" if i % 4 == 0 else None,
            "DATE_ENTREE": date(2025, 1, 1 + i % 28), "HEBERGEMENT": package, "CHAMBRE": str(100 + i % 300),
            "GIR": 1 + i % 6, "PAYEUR": payer, "AIDE_SOCIALE": social_aid, "MODE_REGLEMENT": mode,
            "IBAN": fr_iban(i) if debit and i % 6 != 2 else None, "BIC": "AGRIFRPPXXX" if debit else None,
            "TITULAIRE_COMPTE": None, "RUM": f"OLD-{i:06d}" if has_rum else None,
            "DATE_SIGNATURE_MANDAT": date(2020, 5, 1) if has_rum else None,
        }
        sheet.append([row[h] for h in headers])
    residents = directory / "residents.xlsx"
    book.save(residents)

    headers = [c.name for c in RELATIVE_COLUMNS]
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Proches")
    sheet.append(headers)
    for i in range(1, n + 1):
        # Direct-debit residents without IBAN on their own row (i % 6 == 2) are paid by this relative.
        pays = i % 3 == 0 or i % 6 == 2
        row = {"NUMERO": i, "CIVILITE": "M", "NOM": "Dupont-Lâtre", "PRENOM": "Étienne", "LIEN": "FILS",
               "ADRESSE": "3 place Bellecour", "CODE_POSTAL": "69002", "VILLE": "Lyon", "TELEPHONE": "0612345678",
               "EMAIL": f"proche{i}@example.org", "DESTINATAIRE_FACTURES": 1, "TUTEUR": 1 if i % 10 == 0 else 0,
               "PAYEUR": 1 if pays else 0, "IBAN": fr_iban(50_000_000 + i) if i % 6 == 2 else None,
               "BIC": None, "TITULAIRE_COMPTE": None, "RUM": None, "DATE_SIGNATURE_MANDAT": None}
        sheet.append([row[h] for h in headers])
    relatives = directory / "proches.xlsx"
    book.save(relatives)
    return residents, relatives


def run_one(n: int, directory: Path) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from demo.services.seed import demo_seed
    from imports.services.residents_import import ImportFile, residents_import
    from residents.models import Relative, Resident
    from sepa.models import Mandate

    call_command("migrate", verbosity=0)
    demo_seed(residents=0)
    t0 = time.perf_counter()
    residents_path, relatives_path = build_files(directory, n)
    build = time.perf_counter() - t0
    files = {"residents": ImportFile(residents_path, residents_path.name),
             "relatives": ImportFile(relatives_path, relatives_path.name)}
    connection.force_debug_cursor = True
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        dry = residents_import(**files, dry_run=True)
        validate = time.perf_counter() - t0
    validate_queries = len(ctx.captured_queries)
    if dry.report.has_errors:
        raise SystemExit("\n".join(i.as_line() for i in dry.report.errors[:20]))
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        outcome = residents_import(**files)
        total = time.perf_counter() - t0
    import_queries = len(ctx.captured_queries)
    assert outcome.imported
    return {"n": n, "db": connection.vendor, "build_s": build,
            "size_mb": (residents_path.stat().st_size + relatives_path.stat().st_size) / 1e6,
            "validate_s": validate, "validate_queries": validate_queries, "import_s": total,
            "import_queries": import_queries, "residents": Resident.objects.count(),
            "relatives": Relative.objects.count(), "mandates": Mandate.objects.count(),
            "warnings": len(outcome.report.warnings)}


def child(n: int, database_url: str | None) -> None:
    tmp = throwaway_environment(database_url=database_url, prefix="sejour-import-bench-")
    report_row(run_one(n, tmp))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, nargs="*", default=[10000])
    parser.add_argument("--database-url", help="PostgreSQL URL (a database the script may drop and re-create).")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.database_url)
        return
    rows = run_children(__file__, args.residents, [args.database_url])
    print("| database | residents + relatives | files (MB) | validate (s) | validate queries | validate + import (s) "
          "| import queries | mandates | warnings |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['db']} | {r['residents']} + {r['relatives']} | {r['size_mb']:.1f} | {r['validate_s']:.1f} | "
              f"{r['validate_queries']} | {r['import_s']:.1f} | {r['import_queries']} | {r['mandates']} | "
              f"{r['warnings']} |")
        verdict = "OK" if r["import_s"] < 60 else "TOO SLOW"
        print(f"target < 60 s for validate + import: {verdict}")


if __name__ == "__main__":
    main()
