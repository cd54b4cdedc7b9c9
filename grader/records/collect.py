"""`python -m grader collect`: an LMS submissions download into SUBMISSIONS, via the roster.

In: the zip Canvas ("Download Submissions") or Moodle ("Download all submissions") gives for
one assignment, and the class roster (grader.records.roster). Out:
`SUBMISSIONS/<student_id>/<assignment_id>/<assignment_id>.ipynb`, the layout `autograde`
reads, and one report line per file of the download that did not become a hand-in (never a
silent drop).

File names, as the LMSs write them:
* Canvas: `<sortable name>_<canvas user id>_<submission/attachment id>_<file name>`, with
  `_LATE_` (or `_late_`: matched in any case) before the user id when the submission was
  late, e.g. `leeann_501_90017_ex2_identity.ipynb`,
  `leeann_LATE_501_90017_ex2_identity-1.ipynb` (a resubmission gets `-1`). The sortable name
  is lower-cased with everything but letters and digits removed. The user id is the `ID`
  column of Canvas's gradebook export. Sources: Canvas Instructor Guide, "How do I download
  all student submissions for an assignment?" (community.canvaslms.com, Instructor Guide:
  files are renamed with the student's name and ids); instructure/canvas-lms, ContentZipper
  (the class that builds the download and joins name, LATE, user id, attachment id and the
  uploaded file name with underscores).
* Moodle: with "Download submissions in folders" (the default since Moodle 3.x), one folder
  per student `<Full name>_<participant id>_assignsubmission_file_/` holding the files as
  uploaded; without it, flat files `<Full name>_<participant id>_assignsubmission_file_<file>`.
  Online text comes as `..._assignsubmission_onlinetext_/onlinetext.html`. The participant id
  is the one in the grading worksheet's `Identifier` ("Participant 123456"). Sources:
  MoodleDocs, "Assignment settings" / "Using Assignment: Download all submissions"
  (https://docs.moodle.org/en/Using_Assignment); moodle/moodle, mod/assign/locallib.php
  (download_submissions: prefix clean_filename(fullname . '_' . get_uniqueid_for_user) and
  '_' . plugin subtype . '_' . plugin type . '_').

The name parsers are nbgrader FileNameCollectorPlugins, so nbgrader's own `zip_collect`
uses them too: `nbgrader zip_collect ASSIGNMENT
--collector=grader.records.collect.CanvasCollector --CanvasCollector.roster=ROSTER.csv`
(MoodleCollector likewise; add `--extractor=grader.records.collect.SafeExtractor` so that
zip_collect unpacks with the limits below instead of setuptools' unpack_archive). `python -m grader
collect` does not unpack the zip to disk at all: members are data, read one at a time with
size limits; a member name is only parsed, never used as a path (absolute names, `..`, links
and encrypted members are refused), and every file written is
SUBMISSIONS/<roster id>/<assignment id>/<assignment id>.ipynb with both ids checked by
grader.files.name_problem.
"""

from __future__ import annotations

import csv
import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from traitlets import Unicode

from grader.files import (
    MAX_FILE_BYTES,
    UnsafeFile,
    lstat_kind,
    make_folders,
    name_problem,
    read_bytes,
    write_atomic,
)
from grader.records.roster import CANVAS, MOODLE, Roster, RosterStudent, name_key, read_roster

MAX_MEMBERS = 20_000            # files in one download (a class of thousands, a few each)
MAX_TOTAL_BYTES = 4 * 1024**3   # bytes read from one download, all members together
CANVAS_NAME = re.compile(
    r"^(?P<name>[^_]*)_(?:(?P<late>late)_)?(?P<lms_id>\d+)_(?P<attachment>\d+)_(?P<file>.+)$",
    re.IGNORECASE)
MOODLE_FOLDER = re.compile(r"^(?P<name>.*)_(?P<lms_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_$")
MOODLE_FLAT = re.compile(
    r"^(?P<name>.*)_(?P<lms_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.+)$")
REPORT_HEADER = ["member", "student_id", "outcome", "detail"]
# outcomes: collected / unchanged / replaced are files placed; the rest were not
PLACED = ("collected", "unchanged", "replaced")


class CollectError(ValueError):
    """The download or roster cannot be used at all; the message says why."""


@dataclass(frozen=True)
class Parsed:
    """What an LMS file name says."""

    name: str        # the student's name as the LMS spelled it in the file name
    lms_id: str      # Canvas user id / Moodle participant id
    file: str        # the file name the student uploaded
    late: bool       # Canvas's LATE marker


def parse_canvas(member: str) -> Parsed | None:
    m = CANVAS_NAME.match(PurePosixPath(member).name)
    if not m:
        return None
    return Parsed(m["name"], m["lms_id"], m["file"], bool(m["late"]))


def parse_moodle(member: str) -> Parsed | None:
    parts = PurePosixPath(member).parts
    for i, part in enumerate(parts[:-1]):  # the folder form: .../<prefix>_/<file...>
        m = MOODLE_FOLDER.match(part)
        if m:
            return Parsed(m["name"], m["lms_id"], "/".join(parts[i + 1:]), False)
    m = MOODLE_FLAT.match(parts[-1]) if parts else None
    if not m:
        return None
    return Parsed(m["name"], m["lms_id"], m["file"], False)


PARSERS: dict[str, Callable[[str], Parsed | None]] = {CANVAS: parse_canvas, MOODLE: parse_moodle}


def match_student(roster: Roster, parsed: Parsed) -> RosterStudent | str:
    """The roster student a parsed file name belongs to, or why there is none."""
    by_id = roster.by_lms_id(parsed.lms_id)
    if by_id is not None:
        return by_id
    if any(s.lms_id for s in roster.students):  # the roster has the LMS's ids: trust them
        return f"{roster.lms} id {parsed.lms_id} is not in the roster"
    named = roster.by_name(parsed.name)  # Moodle gradebook export: names only
    if len(named) == 1:
        return named[0]
    if named:
        return (f"{len(named)} roster students are named {parsed.name!r}; give Moodle's "
                "grading worksheet as the roster (it has participant ids)")
    return f"no roster student is named {parsed.name!r}"


class _RosterCollector(FileNameCollectorPlugin):
    """Shared by the Canvas and Moodle collectors: file name -> roster student."""

    lms = ""
    roster = Unicode("", help="the LMS's gradebook export (Moodle: or grading worksheet) "
                     "that maps the ids in file names to student ids").tag(config=True)
    _roster: Roster | None = None

    def roster_file(self) -> Roster:
        if self._roster is None:
            if not self.roster:
                raise CollectError(f"{type(self).__name__}.roster is not set")
            self._roster = read_roster(Path(self.roster))
        return self._roster

    def collect(self, submitted_file: str) -> dict | None:
        """nbgrader zip_collect's hook: {student_id, file_id} for a notebook that matches a
        roster student, None (with a warning saying why) for anything else."""
        if PurePosixPath(submitted_file).suffix not in self.valid_ext:
            return None
        parsed = PARSERS[self.lms](Path(submitted_file).as_posix())
        if parsed is None:
            self.log.warning("not a %s submission file name: %s", self.lms, submitted_file)
            return None
        who = match_student(self.roster_file(), parsed)
        if isinstance(who, str):
            self.log.warning("%s: %s", submitted_file, who)
            return None
        assignment = self.parent.coursedir.assignment_id if self.parent else ""
        return {"student_id": who.student_id, "file_id": f"{assignment or parsed.file}.ipynb"}


class CanvasCollector(_RosterCollector):
    """nbgrader zip_collect --collector=grader.records.collect.CanvasCollector"""

    lms = CANVAS


class MoodleCollector(_RosterCollector):
    """nbgrader zip_collect --collector=grader.records.collect.MoodleCollector"""

    lms = MOODLE


class SafeExtractor(ExtractorPlugin):
    """nbgrader zip_collect --extractor=grader.records.collect.SafeExtractor: each *.zip in the
    archive folder unpacked into extracted/<zip name>/ as data. Members that member_problem
    refuses, and members past the size limits, are skipped with a warning; a file already there
    is kept unless --force."""

    def extract(self, archive_path: str, extracted_path: str) -> None:
        for archive in sorted(Path(archive_path).iterdir()):
            if lstat_kind(archive) != "file" or archive.suffix.lower() != ".zip":
                self.log.warning("Skipped (not a zip file): %s", archive)
                continue
            out = make_folders(Path(extracted_path), archive.stem)
            with zipfile.ZipFile(archive) as z:
                budget = [MAX_TOTAL_BYTES]
                for info in z.infolist()[:MAX_MEMBERS]:
                    if not info.is_dir():
                        self._extract_one(z, info, out, budget)

    def _extract_one(self, z: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path,
                     budget: list[int]) -> None:
        name, problem = member_name(info), member_problem(info)
        if problem:
            self.log.warning("Skipped zip member %r: %s", name, problem)
            return
        parts = PurePosixPath(name).parts
        limit = min(MAX_FILE_BYTES, budget[0])
        with z.open(info) as f:
            data = f.read(limit + 1)
        budget[0] -= len(data)
        if len(data) > limit:
            self.log.warning("Skipped zip member %r: more than %d bytes", name, limit)
            return
        try:
            dest = make_folders(out, *parts[:-1]) / parts[-1]
            if lstat_kind(dest) != "missing" and not self.force:
                self.log.warning("Kept existing %s (--force replaces it)", dest)
                return
            write_atomic(dest, data)
        except UnsafeFile as err:
            self.log.warning("Skipped zip member %r: %s", name, err)


@dataclass
class Outcome:
    member: str
    student_id: str
    outcome: str     # collected, unchanged, replaced, kept-existing, unmatched, ...
    detail: str = ""

    @property
    def placed(self) -> bool:
        return self.outcome in PLACED


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as the LMS wrote it: zip tools that write UTF-8 names without setting
    the zip's UTF-8 flag (bit 11) get them decoded as cp437 by Python; undo that."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.filename


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member is not read at all (its name is never used as a path anyway)."""
    name = info.filename
    parts = PurePosixPath(name).parts
    if name.startswith("/") or "\\" in name or "\0" in name or ".." in parts or (
            re.match(r"^[A-Za-z]:", name)):
        return "unsafe member name (absolute, '..', backslash or drive)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    if info.flag_bits & 0x1:
        return "encrypted"
    return None


def collect(download: Path, roster: Roster, assignment_id: str, submissions: Path,
            replace: bool = False, max_file_bytes: int = MAX_FILE_BYTES,
            max_total_bytes: int = MAX_TOTAL_BYTES) -> list[Outcome]:
    """Place each student's notebook of `download` in SUBMISSIONS; one Outcome per member
    (and one `no-hand-in` per roster student without a notebook)."""
    if name_problem(assignment_id):
        raise CollectError(f"assignment id {assignment_id!r}: {name_problem(assignment_id)}")
    try:
        archive = zipfile.ZipFile(download)
    except (OSError, zipfile.BadZipFile) as err:
        raise CollectError(f"{download}: not a readable zip file ({err})") from None
    submissions.mkdir(parents=True, exist_ok=True)
    with archive:
        members = [i for i in archive.infolist() if not i.is_dir()]
        if len(members) > MAX_MEMBERS:
            raise CollectError(f"{download}: {len(members)} files, more than {MAX_MEMBERS}")
        outcomes, chosen = _match_members(members, roster, assignment_id)
        budget = [max_total_bytes]
        for student_id, info in sorted(chosen.items()):
            outcomes.append(_place(archive, info, student_id, assignment_id, submissions,
                                   replace, max_file_bytes, budget))
    handed_in = {o.student_id for o in outcomes if o.student_id}
    outcomes += [Outcome("", s.student_id, "no-hand-in", f"{s.name}: no notebook in the download")
                 for s in roster.students if s.student_id not in handed_in]
    return outcomes


def _match_members(members: list[zipfile.ZipInfo], roster: Roster,
                   assignment_id: str) -> tuple[list[Outcome], dict[str, zipfile.ZipInfo]]:
    """Outcomes of the members that will not be placed, and the notebook chosen per student."""
    outcomes, by_student = [], {}
    for info in members:
        name, problem = member_name(info), member_problem(info)
        parsed = None if problem else PARSERS[roster.lms](name)
        if problem or parsed is None:
            outcomes.append(Outcome(name, "", "refused" if problem else "unmatched",
                                    problem or f"not a {roster.lms} submission file name"))
            continue
        who = match_student(roster, parsed)
        if isinstance(who, str):
            outcomes.append(Outcome(name, "", "unmatched", who))
            continue
        if not parsed.file.lower().endswith(".ipynb"):
            outcomes.append(Outcome(name, who.student_id, "not-a-notebook",
                                    f"{parsed.file!r} is not a .ipynb file"))
            continue
        late = " (late)" if parsed.late else ""
        by_student.setdefault(who.student_id, []).append((info, parsed.file, late))
    chosen = {}
    for student_id, files in by_student.items():
        pick = _pick_notebook(files, assignment_id)
        for info, _, late in files:
            if pick is None:
                outcomes.append(Outcome(member_name(info), student_id, "ambiguous",
                                        f"{len(files)} notebooks, none named "
                                        f"{assignment_id}.ipynb: place one by hand"))
            elif info is pick:
                chosen[student_id] = info
                if late:
                    outcomes.append(Outcome(member_name(info), student_id, "late",
                                            "the LMS marked this submission late"))
            else:
                outcomes.append(Outcome(member_name(info), student_id, "not-chosen",
                                        f"another notebook is named {assignment_id}.ipynb"))
    return outcomes, chosen


def _pick_notebook(files: list, assignment_id: str):
    """The one notebook of a student, or the one named after the assignment among several
    (Canvas appends -1, -2 to resubmitted names), or None."""
    if len(files) == 1:
        return files[0][0]
    key = name_key(assignment_id)
    named = [info for info, name, _ in files
             if name_key(re.sub(r"-\d+$", "", PurePosixPath(name).stem)) == key]
    return named[0] if len(named) == 1 else None


def _place(archive: zipfile.ZipFile, info: zipfile.ZipInfo, student_id: str,
           assignment_id: str, submissions: Path, replace: bool, max_file_bytes: int,
           budget: list[int]) -> Outcome:
    """Write one chosen member to SUBMISSIONS/<student>/<assignment>/<assignment>.ipynb."""
    limit = min(max_file_bytes, budget[0])
    with archive.open(info) as f:
        data = f.read(limit + 1)  # the real size, not the size the zip header claims
    budget[0] -= len(data)
    if len(data) > limit:
        return Outcome(member_name(info), student_id, "too-large",
                       f"more than {limit} bytes (limit per file {max_file_bytes})")
    try:
        return _write(member_name(info), data, student_id, assignment_id, submissions, replace)
    except UnsafeFile as err:  # a link or special file in SUBMISSIONS where a hand-in goes
        return Outcome(member_name(info), student_id, "refused", f"destination: {err}")


def _write(member: str, data: bytes, student_id: str, assignment_id: str, submissions: Path,
           replace: bool) -> Outcome:
    folder = make_folders(submissions, student_id, assignment_id)
    dest = folder / f"{assignment_id}.ipynb"
    if lstat_kind(dest) != "missing":
        old = read_bytes(dest)  # refuses a link or special file in the way
        if old == data:
            return Outcome(member, student_id, "unchanged", str(dest))
        if not replace:
            return Outcome(member, student_id, "kept-existing",
                           f"{dest} exists with other content; --replace overwrites it")
        write_atomic(dest, data)
        return Outcome(member, student_id, "replaced", str(dest))
    write_atomic(dest, data)
    return Outcome(member, student_id, "collected", str(dest))


def write_report(path: Path, outcomes: list[Outcome]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(REPORT_HEADER)
        for o in outcomes:
            w.writerow([o.member, o.student_id, o.outcome, o.detail])


def run(download: Path, roster_path: Path, assignment_id: str, submissions: Path,
        lms: str | None = None, replace: bool = False, report: Path | None = None,
        log: Callable[[str], None] = print) -> int:
    """The command: collect, print what happened, write the report; exit status 0 when every
    notebook of the download was placed (unchanged counts), 1 otherwise."""
    roster = read_roster(roster_path)
    if lms and roster.lms != lms:
        raise CollectError(f"--lms {lms}, but {roster_path} is a {roster.kind} file")
    for problem in roster.problems:
        log(f"warning: roster: {problem}")
    outcomes = collect(download, roster, assignment_id, submissions, replace=replace)
    for o in outcomes:
        if not o.placed or o.outcome == "replaced":  # an overwrite is always said
            where = f" ({o.student_id})" if o.student_id and o.member else ""
            log(f"{o.outcome}: {o.member or o.student_id}{where}: {o.detail}")
    if report:
        write_report(report, outcomes)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    log(f"{download.name} -> {submissions}: " + ", ".join(
        f"{n} {k}" for k, n in sorted(counts.items())))
    stuck = [o for o in outcomes if o.outcome in ("unmatched", "refused", "ambiguous",
                                                  "too-large", "kept-existing")
             and o.member.lower().endswith(".ipynb")]
    return 1 if stuck else 0
