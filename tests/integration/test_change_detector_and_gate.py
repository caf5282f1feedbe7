"""The change detector cannot lie and the publication gate is tied to the warehouse's state,
end to end through the `warehouse` commands a user runs, on a tiny demo source:

- a model whose build fails its tests is rebuilt, once its code is restored, although its
  code is then the same as the last good build's, and what is published equals a full
  rebuild;
- a hand-run dbt command, a failed `warehouse transform` or raw rows changed by hand leave
  the gate shut: `warehouse publish` refuses with one line naming the reason, until the
  checks have judged the warehouse as it is;
- a run with no change does no dbt work, prints no "emitted no result" warning, and shows
  in the job's run history.

The dbt project is a copy (the tests edit a model); every file lives under tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.defs.transform import DBT_PROJECT_DIR
from orchestration.runner import REPOSITORY_LABEL

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gate")]

BIN = Path(sys.executable).parent
COHORTS = Path("models") / "marts" / "finance" / "mart_ltv_cohorts.sql"
BROKEN = (
    "union all\nselect * from final where cohort_month = (select min(cohort_month) from final)\n"
)


class Site:
    """A demo warehouse and the environment every `warehouse` command of the tests runs in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "dbt_project"
        shutil.copytree(
            DBT_PROJECT_DIR, self.project, ignore=shutil.ignore_patterns("target", "logs")
        )
        self.good_cohorts = (self.project / COHORTS).read_text()
        self.home = root / "dagster_home"
        self.env = {
            **os.environ,
            "WAREHOUSE_DATA_DIR": str(root / "data"),
            "WAREHOUSE_PII_KEY": "gate-test-key",
            "WAREHOUSE_DBT_PROJECT_DIR": str(self.project),
            "WAREHOUSE_DBT_TARGET_DIR": str(root / "dbt_target"),
            "WAREHOUSE_GX_SITE_DIR": str(root / "gx_site"),
            "WAREHOUSE_ALERT_LOG": str(root / "logs" / "alerts.jsonl"),
            "DAGSTER_HOME": str(self.home),
        }
        for name in ("WAREHOUSE_SOURCE_URL", "WAREHOUSE_PATH", "WAREHOUSE_PG_URL"):
            self.env.pop(name, None)

    @property
    def warehouse(self) -> Path:
        return self.root / "data" / "warehouse.duckdb"

    @property
    def serving(self) -> Path:
        return self.root / "data" / "serving" / "warehouse.duckdb"

    def warehouse_command(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "warehouse"), *args], env=self.env, capture_output=True, text=True
        )

    def dbt(self, *args: str) -> subprocess.CompletedProcess:
        """dbt run by hand on the warehouse, outside the project's runner."""
        return subprocess.run(
            [str(BIN / "dbt"), *args, "--project-dir", str(self.project), "--profiles-dir",
             str(self.project), "--target-path", str(self.root / "hand_target"),
             "--log-path", str(self.root / "hand_logs")],
            env={**self.env, "WAREHOUSE_PATH": str(self.warehouse)},
            capture_output=True,
            text=True,
        )  # fmt: skip

    def served_version(self) -> str | None:
        if not self.serving.exists():
            return None
        with duckdb.connect(str(self.serving), read_only=True) as con:
            return con.execute("select max(version) from analytics._publish_metadata").fetchall()[
                0
            ][0]

    def served(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.serving), read_only=True) as con:
            return con.execute(sql).fetchall()

    def break_cohorts(self) -> None:
        (self.project / COHORTS).write_text(self.good_cohorts + BROKEN)

    def restore_cohorts(self) -> None:
        (self.project / COHORTS).write_text(self.good_cohorts)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def refused(result: subprocess.CompletedProcess) -> str:
    """The one line a refused command printed on stderr (and that it did refuse)."""
    assert result.returncode != 0, result.stdout[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def rebuilt_cohorts(site: Site) -> list[tuple]:
    """The oracle: mart_ltv_cohorts of a copy of the warehouse rebuilt from scratch by plain dbt."""
    copy = site.root / "oracle" / "warehouse.duckdb"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(site.warehouse, copy)
    result = subprocess.run(
        [str(BIN / "dbt"), "build", "--full-refresh", "--exclude", "resource_type:test",
         "resource_type:unit_test", "--quiet", "--project-dir", str(site.project),
         "--profiles-dir", str(site.project), "--target-path", str(copy.parent / "target"),
         "--log-path", str(copy.parent / "logs")],
        env={**site.env, "WAREHOUSE_PATH": str(copy)},
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    with duckdb.connect(str(copy), read_only=True) as con:
        return con.execute("select * from finance.mart_ltv_cohorts order by all").fetchall()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """A tiny demo source, run once through `warehouse run` (built and published)."""
    site = Site(tmp_path_factory.mktemp("gate"))
    ok(site.warehouse_command("generate", "--scale", "tiny"))
    ok(site.warehouse_command("run"))
    assert site.served_version() is not None
    return site


def test_a_run_with_no_change_is_quiet_and_in_the_jobs_history(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs first, on the warehouse the fixture's run left: nothing changed since."""
    served = site.served_version()
    idle = site.warehouse_command("run")
    output = " ".join(ok(idle).split())
    assert "emitted no result" not in output
    assert "57 dbt assets left as they were" in output.replace("\n", " ")
    assert "Nothing changed since the last run" in output
    assert site.served_version() == served
    monkeypatch.setenv("DAGSTER_HOME", str(site.home))  # dagster.yaml places the event log there
    with dg.DagsterInstance.from_config(str(site.home)) as instance:
        history = instance.get_runs(dg.RunsFilter(job_name="land", tags=REPOSITORY_LABEL))
        builds = instance.get_runs(dg.RunsFilter(job_name="incremental", tags=REPOSITORY_LABEL))
    assert len(history) >= 2 and builds  # the fixture's run and this one
    workspace = (Path(__file__).parents[2] / "workspace.yaml").read_text()
    assert f"location_name: {REPOSITORY_LABEL['.dagster/repository'].split('@')[1]}" in workspace


def test_a_model_that_failed_its_tests_is_rebuilt_once_its_code_is_restored(site: Site) -> None:
    served = site.served_version()
    site.break_cohorts()
    broken = site.warehouse_command("run")
    assert broken.returncode == 1
    printed = " ".join(broken.stdout.split())
    assert "unique_combination_of_columns_mart_ltv_cohorts" in printed
    assert "Got 1 result" in printed  # the reason, not only the check's name
    assert site.served_version() == served  # nothing published
    with duckdb.connect(str(site.warehouse), read_only=True) as con:
        ((rows, keys),) = con.execute(
            "select count(*), count(distinct (tenant_id, cohort_month)) from finance.mart_ltv_cohorts"
        ).fetchall()
    assert rows == keys + 1  # the failed build left its table behind

    # The code is the last good build's again: the model is rebuilt all the same.
    site.restore_cohorts()
    output = ok(site.warehouse_command("run"))
    assert "emitted no result" not in output
    assert "Published version" in output and site.served_version() != served
    ((rows, keys),) = site.served(
        "select count(*), count(distinct (tenant_id, cohort_month)) from analytics.mart_ltv_cohorts"
    )
    assert rows == keys
    published = site.served("select * from analytics.mart_ltv_cohorts order by all")
    assert published == rebuilt_cohorts(site)


def test_publish_refuses_what_its_checks_did_not_judge(site: Site) -> None:
    served = site.served_version()
    # dbt by hand: a build whose test fails
    site.break_cohorts()
    assert site.dbt("build", "--select", "mart_ltv_cohorts").returncode != 0
    line = refused(site.warehouse_command("publish"))
    assert line.startswith("error: not published: ") and "mart_ltv_cohorts" in line
    # dbt by hand again, with the good code and no test: the gate still has no verdict on it
    site.restore_cohorts()
    assert site.dbt("run", "--select", "mart_ltv_cohorts").returncode == 0
    line = refused(site.warehouse_command("publish"))
    assert "mart_ltv_cohorts" in line and "warehouse run" in line
    assert site.served_version() == served
    # the incremental build finds the build it did not make, rebuilds and checks it
    output = ok(site.warehouse_command("transform", "--incremental"))
    # the summary counts the rebuilt mart under the Dagster group the UI shows: marts
    assert re.search(r"\bmarts\b\W+[1-9]", output), output
    output = ok(site.warehouse_command("publish"))
    assert "Published version" in output and site.served_version() != served
    served = site.served_version()

    # raw rows changed by hand: the transform fails on them, and publish refuses
    with duckdb.connect(str(site.warehouse)) as con:
        con.execute("insert into raw.courses select * from raw.courses order by id limit 60")
    failed = site.warehouse_command("transform", "--incremental")
    assert failed.returncode != 0
    line = refused(site.warehouse_command("publish"))
    assert line.startswith("error: not published: ") and "courses" in line
    assert site.served_version() == served
