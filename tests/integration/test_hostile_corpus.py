"""The hostile corpus (tests/corpus/make_corpus.py) through the web upload, the API and the CLI.

Each file must end in a sentence of ours (refused) or in the right contacts (read), with the
process that read it alive afterwards, its peak memory under 1.5 GB, and the contacts that
were there before unchanged. The web and API go to one real `wabulk serve` (the worst files
killed the whole process, which a test client cannot show); the CLI is a real subprocess.

Every process started here gets an address-space limit well above the bound but far below the
machine's memory: a regression then fails this test instead of taking the shared machine down.
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from wabulk.auth import tokens
from wabulk.db import Database
from wabulk.models import Import, User

from ..conftest import PASSWORD, csrf_from
from ..corpus.make_corpus import CORPUS_PHONES, Entry, build
from ..importing import contacts
from ..sheet_files import PEOPLE, write_csv
from ..support import WABULK, new_instance, run_wabulk, running_server, wabulk_env

PEAK_LIMIT_MB = 1536
ADDRESS_SPACE_LIMIT = 5 << 30
EMAIL = "owner@example.com"
# Text that is Python's, calamine's or the machine's rather than ours.
FOREIGN = re.compile(
    r"Traceback|\w+(Error|Exception)\b|calamine|pyo3|panick|capacity overflow|"
    r"universal-newline|field limit|unrecognized entity|at \d+\.\.\d+|requested, max|"
    r"Cell limit exceeded|\bNone\b|\.py\b|/tmp/|/work/|errno",
    re.IGNORECASE,
)
# A hang guard, not a measure: a finished import is seen long before it.
HANG_GUARD_SECONDS = 120


@dataclass
class Result:
    refused: str | None = None  # the sentence a refusal showed
    counts: dict[str, Any] = field(default_factory=dict)  # a read's counts
    peak_mb: int = 0
    problems: list[str] = field(default_factory=list)


def check(entry: Entry, result: Result) -> list[str]:
    """What is wrong with how a file ended (nothing when it ended as it must)."""
    problems = list(result.problems)
    if result.peak_mb >= PEAK_LIMIT_MB:
        problems.append(f"peak memory {result.peak_mb} MB")
    if result.refused is not None:
        sentence = result.refused
        if entry.outcome == "read":
            problems.append(f"refused a file it must read: {sentence!r}")
        elif entry.words and not re.search(entry.words, sentence, re.IGNORECASE):
            problems.append(f"refusal does not say /{entry.words}/: {sentence!r}")
        if FOREIGN.search(sentence):
            problems.append(f"refusal is not a sentence of ours: {sentence!r}")
        if not sentence.rstrip().endswith((".", "!")):
            problems.append(f"refusal is not a sentence: {sentence!r}")
    elif result.counts:
        if entry.outcome == "refused":
            problems.append(f"read a file it must refuse: {result.counts}")
        imported = sum(result.counts.get(k, 0) for k in ("created", "updated", "unchanged"))
        if imported != entry.rows or result.counts.get("invalid"):
            problems.append(f"imported {imported} contacts, expected {entry.rows}: {result.counts}")
    elif not problems:
        problems.append("ended in neither a refusal nor an import")
    return problems


# ---- measuring memory --------------------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


class PeakMeter:
    """The peak resident memory of a server and whatever it starts, file by file.

    The server's own high-water mark is reset before each file (/proc/PID/clear_refs); an
    import's helper process is sampled while it lives (its high-water mark only grows, so a
    sample after its peak sees it).
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.children_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for child in _descendants(self.pid):
                self.children_kb = max(self.children_kb, _status_kb(child, "VmHWM"))

    def reset(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.children_kb = 0

    def peak_mb(self) -> int:
        return max(_status_kb(self.pid, "VmHWM"), self.children_kb) // 1024

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _limit(pid: int) -> None:
    resource.prlimit(pid, resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


# ---- the server: web pages and API ---------------------------------------------------------


class ServerPaths:
    def __init__(self, url: str, instance: Path, token: str) -> None:
        self.url = url
        self.instance = instance
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {token}"
        self.web = requests.Session()
        self.sign_in()

    def sign_in(self) -> None:
        self.web = requests.Session()
        page = self.web.get(f"{self.url}/login", timeout=30)
        signed = self.web.post(
            f"{self.url}/login",
            data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
            allow_redirects=False,
            timeout=30,
        )
        assert signed.status_code == 302, signed.text

    def alive(self) -> bool:
        try:
            return requests.get(f"{self.url}/login", timeout=30).status_code == 200
        except requests.RequestException:
            return False

    def through_web(self, entry: Entry, path: Path) -> Result:
        page = self.web.get(f"{self.url}/contacts/imports/new", timeout=30)
        sent = self.web.post(
            f"{self.url}/contacts/imports/new",
            data={"csrf_token": csrf_from(page.text), "kind": "contacts"},
            files={"file": (entry.upload_name or entry.name, path.read_bytes())},
            allow_redirects=False,
            timeout=HANG_GUARD_SECONDS,
        )
        if sent.status_code == 400:
            found = re.search(r'data-testid="form-error"><i [^>]*></i>\s*(.*?)</div>', sent.text)
            if not found:
                return Result(problems=["a 400 without the form's error"])
            return Result(refused=_unescape(found.group(1)))
        if sent.status_code != 302:
            return Result(problems=[f"upload answered {sent.status_code}"])
        import_id = int(sent.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
        draft = self.web.get(f"{self.url}/api/v1/imports/{import_id}", timeout=30).json()
        form = self.web.get(f"{self.url}/contacts/imports/{import_id}", timeout=30)
        data = {"csrf_token": csrf_from(form.text), "default_country": "IN", "list_choice": ""}
        suggested = draft["suggested_mapping"]
        for i, column in enumerate(draft["columns"]):
            role = "phone" if column == suggested.get("phone") else "attribute"
            data[f"role_{i}"] = "name" if column in (suggested.get("name") or []) else role
        started = self.web.post(
            f"{self.url}/contacts/imports/{import_id}/start",
            data=data,
            allow_redirects=False,
            timeout=30,
        )
        if started.status_code != 302:
            return Result(problems=[f"start answered {started.status_code}"])
        return self._finished(self.web, f"{self.url}/contacts/imports/{import_id}/status.json")

    def through_api(self, entry: Entry, path: Path) -> Result:
        sent = self.api.post(
            f"{self.url}/api/v1/imports",
            files={"file": (entry.upload_name or entry.name, path.read_bytes())},
            timeout=HANG_GUARD_SECONDS,
        )
        if sent.status_code == 422:
            return Result(refused=sent.json()["error"]["message"])
        if sent.status_code != 201:
            return Result(problems=[f"upload answered {sent.status_code}"])
        import_id = sent.json()["id"]
        started = self.api.post(
            f"{self.url}/api/v1/imports/{import_id}/start",
            json={"default_country": "IN"},
            timeout=30,
        )
        if started.status_code != 200:
            return Result(problems=[f"start answered {started.status_code}: {started.text}"])
        return self._finished(self.api, f"{self.url}/api/v1/imports/{import_id}")

    def _finished(self, session: requests.Session, url: str) -> Result:
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while time.monotonic() < deadline:
            state = session.get(url, timeout=30).json()
            if state["status"] == "failed":
                return Result(refused=state["error"] or "")
            if state["status"] == "completed":
                return Result(
                    counts={k: state.get(k) for k in ("created", "updated")}
                    | {
                        "unchanged": state["unchanged"],
                        "invalid": state["invalid"],
                    }
                )
            time.sleep(0.2)
        return Result(problems=["the import never finished"])


def _unescape(html: str) -> str:
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", "", html)).strip()


def _token(instance: Path) -> str:
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        with db.session() as session:
            owner = session.scalars(select(User).where(User.email == EMAIL)).one()
            return tokens.create_token(session, owner, "corpus").secret
    finally:
        db.dispose()


def _stored_uploads(instance: Path) -> list[str]:
    folder = instance / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---- the command line ----------------------------------------------------------------------


# Runs a command under the address-space limit and writes the peak resident memory of what it
# waited for. The kernel's count for a child starts at its parent's size when forked: from this
# small launcher, not from the test process (~170 MB), the figure is the command's own.
_LAUNCHER = """
import resource, subprocess, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
code = subprocess.call(sys.argv[3:])
with open(sys.argv[2], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
"""


def cli_import(instance: Path, path: Path, report: Path) -> Result:
    """`wabulk contacts import` as a user runs it; its peak memory from the kernel's count."""
    peak = report.parent / "cli.peak"
    command = [WABULK, "contacts", "import", str(path), "--country", "IN", "--report", str(report)]
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(ADDRESS_SPACE_LIMIT), str(peak), *command],
        env=wabulk_env(instance),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    stderr = proc.stderr
    usage_kb = int(peak.read_text())
    killed = proc.returncode - 128 if proc.returncode > 128 else 0
    result = Result(peak_mb=usage_kb // 1024)
    if killed:
        result.problems.append(f"killed by signal {killed}: {stderr[-300:]!r}")
    elif proc.returncode:
        lines = [ln for ln in stderr.splitlines() if ln.startswith("Error: ")]
        if not lines or "Traceback" in stderr:
            result.problems.append(f"exit {proc.returncode} without a sentence: {stderr[-300:]!r}")
        else:
            result.refused = lines[-1].removeprefix("Error: ")
    else:
        db = Database(f"sqlite:///{instance / 'wabulk.db'}")
        try:
            with db.session() as session:
                imp = session.scalars(select(Import).order_by(Import.id.desc()).limit(1)).one()
                result.counts = {
                    "created": imp.created_count,
                    "updated": imp.updated_count,
                    "unchanged": imp.unchanged_count,
                    "invalid": imp.invalid_count,
                }
        finally:
            db.dispose()
    return result


# ---- the tests -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entry]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, build(folder)


def _baseline(instance: Path) -> dict[str, dict[str, Any]]:
    db = Database(f"sqlite:///{instance / 'wabulk.db'}")
    try:
        return contacts(db)
    finally:
        db.dispose()


def _unchanged(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[str]:
    kept = {phone: after.get(phone) for phone in before}
    strangers = sorted(set(after) - set(before) - set(CORPUS_PHONES))
    problems = []
    if kept != before:
        problems.append(f"existing contacts changed: {kept} != {before}")
    if strangers:
        problems.append(f"contacts that are in no corpus file: {strangers[:5]}")
    return problems


def _report(title: str, rows: list[tuple[str, str, Result, list[str]]]) -> None:
    print(f"\n{title}")
    for name, path, result, problems in rows:
        outcome = "refused" if result.refused is not None else "read" if result.counts else "-"
        state = "ok" if not problems else "FAIL: " + "; ".join(problems)
        print(f"  {name:28} {path:4} {outcome:8} peak {result.peak_mb:5} MB  {state}")


def _instance_with_people(
    tmp_path: Path, user: bool = True
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """A fresh instance (with an operator for the pages and the API) and three contacts
    imported from a good sheet."""
    instance = tmp_path / "instance"
    if user:
        new_instance(instance, EMAIL, PASSWORD, "operator")
    else:
        assert run_wabulk(instance, "db", "upgrade").returncode == 0
    people = write_csv(tmp_path / "people.csv", PEOPLE)
    imported = run_wabulk(instance, "contacts", "import", str(people), "--country", "IN")
    assert imported.returncode == 0, imported.stderr
    before = _baseline(instance)
    assert len(before) == 3
    return instance, before


def _web_and_api(folder: Path, entries: list[Entry], tmp_path: Path) -> None:
    instance, before = _instance_with_people(tmp_path)
    assert len(before) == 3
    token = _token(instance)
    rows: list[tuple[str, str, Result, list[str]]] = []
    with ExitStack() as stack:

        def start() -> tuple[ServerPaths, PeakMeter]:
            server = stack.enter_context(running_server(instance))
            _limit(server.process.pid)
            meter = PeakMeter(server.process.pid)
            stack.callback(meter.stop)
            return ServerPaths(server.url, instance, token), meter

        paths, meter = start()
        for entry in entries:
            for way in ("web", "api"):
                meter.reset()
                through = paths.through_web if way == "web" else paths.through_api
                try:
                    result = through(entry, folder / entry.name)
                except requests.RequestException as exc:
                    result = Result(problems=[f"no answer ({type(exc).__name__})"])
                result.peak_mb = meter.peak_mb()
                problems = check(entry, result)
                if not paths.alive():
                    problems.append("the server is gone")
                    stack.close()
                    paths, meter = start()
                if leftovers := [n for n in _stored_uploads(instance) if n.endswith(".upload")]:
                    problems.append(f"upload left on disk: {leftovers}")
                rows.append((entry.name, way, result, problems))
    problems = _unchanged(before, _baseline(instance))
    escaped = [p for p in tmp_path.rglob("x.csv")]
    if escaped:
        problems.append(f"an upload's name became a path: {escaped}")
    _report("Hostile corpus through the web upload and the API (one wabulk serve):", rows)
    failed = [f"{name} ({way}): {'; '.join(p)}" for name, way, _, p in rows if p]
    assert not failed + problems, "\n".join(failed + problems)


def _cli(folder: Path, entries: list[Entry], tmp_path: Path) -> None:
    instance, before = _instance_with_people(tmp_path, user=False)
    rows: list[tuple[str, str, Result, list[str]]] = []
    for entry in entries:
        result = cli_import(instance, folder / entry.name, tmp_path / "report.csv")
        rows.append((entry.name, "cli", result, check(entry, result)))
    problems = _unchanged(before, _baseline(instance))
    _report("Hostile corpus through `wabulk contacts import`:", rows)
    failed = [f"{name} (cli): {'; '.join(p)}" for name, _, _, p in rows if p]
    assert not failed + problems, "\n".join(failed + problems)


def test_every_corpus_file_through_the_web_upload_and_the_api_ends_in_a_sentence(
    corpus: tuple[Path, list[Entry]], tmp_path: Path
) -> None:
    folder, entries = corpus
    _web_and_api(folder, entries, tmp_path)


def test_the_worst_corpus_files_through_the_cli_end_in_a_sentence(
    corpus: tuple[Path, list[Entry]], tmp_path: Path
) -> None:
    folder, entries = corpus
    _cli(folder, [e for e in entries if e.cli], tmp_path)


@pytest.mark.slow
def test_every_corpus_file_through_the_cli_ends_in_a_sentence(
    corpus: tuple[Path, list[Entry]], tmp_path: Path
) -> None:
    folder, entries = corpus
    _cli(folder, entries, tmp_path)
