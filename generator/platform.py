"""The deterministic platform generator: every table of docs/source.md, defects included.

``PlatformGenerator(seed, scale, rates).tables()`` yields ``(table, DataFrame)``
chunks in load order. Every value is already the text the source database stores
(see ``encode``). Each table draws from its own random stream, derived from the
seed and the table's name, so one table's shape never shifts another's. What was
planted is recorded in ``self.planted`` (a ``Planted`` ledger) as it is made.

Time runs from ``WINDOW_START`` to ``WINDOW_END`` (UTC); ids grow with creation
time, as an auto-increment key does.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from generator import encode as enc

WINDOW_START = int(np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64))
WINDOW_END = int(np.datetime64("2026-06-30T23:59:59", "s").astype(np.int64))
DAY = 86_400
HOUR = 3_600

# tenant name, region, default currency, reporting time zone
TENANT_PROFILES: tuple[tuple[str, str, str, str], ...] = (
    ("Northwind Academy", "us", "USD", "America/New_York"),
    ("Lumen Learning EU", "eu", "EUR", "Europe/Berlin"),
    ("Thames Skills", "eu", "GBP", "Europe/London"),
    ("Harbour Institute", "apac", "AUD", "Australia/Sydney"),
    ("Pacific Crafts", "us", "USD", "America/Los_Angeles"),
    ("Merlion Campus", "apac", "SGD", "Asia/Singapore"),
    ("Maple Mentors", "us", "CAD", "America/Toronto"),
    ("Ganges Guild", "apac", "INR", "Asia/Kolkata"),
    ("Sakura School", "apac", "JPY", "Asia/Tokyo"),
    ("Rio Makers", "us", "BRL", "America/Sao_Paulo"),
    ("Alpine Atelier", "eu", "EUR", "Europe/Zurich"),
    ("Nordic Knowledge", "eu", "EUR", "Europe/Stockholm"),
)
CURRENCIES: tuple[str, ...] = ("USD", "EUR", "GBP", "AUD", "SGD", "CAD", "INR", "JPY", "BRL")
# Rough price level per currency, so that prices look local (units of currency per USD).
PRICE_LEVEL = {
    "USD": 1.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "AUD": 1.5,
    "SGD": 1.35,
    "CAD": 1.36,
    "INR": 83.0,
    "JPY": 150.0,
    "BRL": 5.0,
}

FIRST_NAMES = np.array(
    [
        "Ada",
        "Alan",
        "Grace",
        "Linus",
        "Edsger",
        "Barbara",
        "Donald",
        "Margaret",
        "Ken",
        "Dennis",
        "Radia",
        "Tim",
        "Frances",
        "Niklaus",
        "Leslie",
        "Shafi",
        "Sophie",
        "Hedy",
        "Katherine",
        "John",
        "Mary",
        "Claude",
        "Annie",
        "Jean",
        "Evelyn",
        "Carl",
        "Ida",
        "Yukihiro",
        "Guido",
        "Bjarne",
        "Anders",
        "Joan",
        "Lois",
        "Emmy",
        "Srinivasa",
        "Marie",
        "Rosalind",
        "Alonzo",
        "Kurt",
        "Noor",
        "Amara",
        "Chen",
        "Priya",
        "Mateo",
        "Lucia",
        "Olu",
        "Freya",
        "Tariq",
        "Ingrid",
        "Kofi",
        "Mei",
    ]
)
LAST_NAMES = np.array(
    [
        "Lovelace",
        "Turing",
        "Hopper",
        "Torvalds",
        "Dijkstra",
        "Liskov",
        "Knuth",
        "Hamilton",
        "Thompson",
        "Ritchie",
        "Perlman",
        "BernersLee",
        "Allen",
        "Wirth",
        "Lamport",
        "Goldwasser",
        "Wilson",
        "Lamarr",
        "Johnson",
        "McCarthy",
        "Keller",
        "Shannon",
        "Easley",
        "Sammet",
        "Boyd",
        "Gauss",
        "Rhodes",
        "Matsumoto",
        "Rossum",
        "Stroustrup",
        "Hejlsberg",
        "Clarke",
        "Haibt",
        "Noether",
        "Ramanujan",
        "Curie",
        "Franklin",
        "Church",
        "Godel",
        "Haddad",
        "Okafor",
        "Zhang",
        "Iyer",
        "Alvarez",
        "Moreno",
        "Adeyemi",
        "Larsen",
        "Rahman",
        "Berg",
        "Mensah",
        "Wong",
    ]
)
EMAIL_DOMAINS = np.array(["example.com", "mail.example.org", "inbox.test", "learners.example.net"])
STREETS = np.array(
    ["Oak", "Maple", "Cedar", "Elm", "Pine", "Birch", "Willow", "Harbor", "Mill", "Lake"]
)
CATEGORIES = np.array(
    [
        "data",
        "design",
        "business",
        "languages",
        "music",
        "fitness",
        "cooking",
        "photography",
        "programming",
        "marketing",
    ]
)
LEVELS = np.array(["beginner", "intermediate", "advanced"])
ACTIVITY_TYPES = np.array(
    [
        "lesson_viewed",
        "video_played",
        "quiz_submitted",
        "login",
        "post_viewed",
        "resource_downloaded",
        "search",
    ]
)
SERVICE_TYPES = np.array(["plumbing", "electrical", "tutoring", "cleaning", "moving", "gardening"])
SERVICE_REGIONS = np.array(["north", "south", "east", "west", "central"])


@dataclass(frozen=True)
class Scale:
    """Row-count targets for one scale; activity logs are the bulk at every size."""

    tenants: int
    users: int
    courses: int
    ebooks: int
    enrollments: int
    ebook_sales: int
    subscriptions: int
    communities: int
    members: int
    posts: int
    providers: int
    orders: int
    activity: int
    attempts: int
    moderation: int
    domain_events: int
    learning_paths: int


SCALES: dict[str, Scale] = {
    "tiny": Scale(3, 400, 60, 20, 1_200, 200, 60, 8, 300, 400, 20, 200, 6_000, 500, 60, 40, 10),
    "small": Scale(
        6,
        5_000,
        500,
        200,
        15_000,
        3_000,
        800,
        60,
        4_000,
        6_000,
        200,
        3_000,
        150_000,
        6_000,
        600,
        300,
        60,
    ),
    "medium": Scale(
        12,
        40_000,
        3_000,
        1_500,
        140_000,
        25_000,
        6_000,
        400,
        30_000,
        50_000,
        1_500,
        25_000,
        1_450_000,
        50_000,
        5_000,
        2_000,
        300,
    ),
    "large": Scale(
        12,
        300_000,
        20_000,
        10_000,
        1_200_000,
        200_000,
        50_000,
        3_000,
        250_000,
        400_000,
        10_000,
        200_000,
        16_000_000,
        400_000,
        40_000,
        15_000,
        2_000,
    ),
}
ACTIVITY_CHUNK_ROWS = 500_000


@dataclass(frozen=True)
class DefectRates:
    """Share of eligible rows that carry each planted defect (docs/source.md, 'Defects')."""

    malformed_json: float = 0.03
    null_currency: float = 0.05
    enum_variant: float = 0.04
    enum_unknown: float = 0.005
    orphan: float = 0.02
    duplicate_person: float = 0.02
    soft_delete: float = 0.03
    stale_cursor: float = 0.05
    zero_date: float = 0.02
    # --mutate only (the generation ignores it): share of the revenue payments a mutation
    # hard-deletes outright, refunds left behind (a privacy purge or a botched cleanup).
    revenue_hard_delete: float = 0.0

    @classmethod
    def parse(cls, overrides: list[str]) -> DefectRates:
        """Build rates from ``name=value`` strings, rejecting unknown names and bad values."""
        known = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for item in overrides:
            name, _, raw = item.partition("=")
            if name not in known:
                raise ValueError(f"unknown defect rate {name!r}; known: {', '.join(sorted(known))}")
            rate = float(raw)
            if not 0.0 <= rate <= 0.5:
                raise ValueError(f"defect rate {name}={rate} must be within [0, 0.5]")
            values[name] = rate
        return cls(**values)

    #: The rates that apply to ``--mutate``; the others shape the generation only.
    MUTATION_RATES = frozenset({"revenue_hard_delete"})

    def changed(self) -> set[str]:
        """The names of the rates that differ from the defaults."""
        default = type(self)()
        return {f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}


@dataclass
class Planted:
    """The ledger of planted defects: defect -> 'table.column' -> ids."""

    defects: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def add(self, defect: str, where: str, ids: np.ndarray) -> None:
        bucket = self.defects.setdefault(defect, {}).setdefault(where, [])
        bucket.extend(int(i) for i in np.asarray(ids).ravel())

    def summary(self) -> dict[str, dict[str, dict[str, object]]]:
        return {
            defect: {
                where: {"count": len(ids), "ids": sorted(ids)} for where, ids in sorted(by.items())
            }
            for defect, by in sorted(self.defects.items())
        }


def table_rng(seed: int, name: str) -> np.random.Generator:
    """An independent, reproducible random stream per (seed, table)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _pick_mask(rng: np.random.Generator, size: int, rate: float) -> np.ndarray:
    """Exactly round(size * rate) rows (at least one when rate > 0) chosen at random."""
    count = round(size * rate)
    if rate > 0 and size > 0:
        count = max(count, 1)
    mask = np.zeros(size, dtype=bool)
    if count:
        mask[rng.choice(size, size=min(count, size), replace=False)] = True
    return mask


def person_names(
    rng: np.random.Generator, serial: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First names, last names and unique lowercase emails for people numbered ``serial``."""
    n = serial.size
    first = FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), n)]
    last = LAST_NAMES[rng.integers(0, len(LAST_NAMES), n)]
    domain = EMAIL_DOMAINS[rng.integers(0, len(EMAIL_DOMAINS), n)]
    email = np.char.lower(enc.join(first, ".", last, serial.astype(str), "@", domain).astype(str))
    return first, last, email


def personal_details(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The plaintext PII columns of ``users`` besides name and email (docs/source.md: PII)."""

    def digits(k: int) -> np.ndarray:
        return rng.integers(10 ** (k - 1), 10**k, n).astype(str)

    dob = rng.integers(
        int(np.datetime64("1950-01-01", "s").astype(np.int64)),
        int(np.datetime64("2006-12-31", "s").astype(np.int64)),
        n,
    )
    countries = np.array(["US", "DE", "GB", "AU", "SG", "CA", "IN", "JP", "BR", "FR"])
    return {
        "country_code": enc.strings(countries[rng.integers(0, countries.size, n)]),
        "phone": enc.join("+1-555-", digits(3), "-", digits(4)),
        "date_of_birth": enc.dates(dob),
        "ssn": enc.join(digits(3), "-", digits(2), "-", digits(4)),
        "government_id": enc.join("P", digits(8)),
        "address_line1": enc.join(
            rng.integers(1, 9999, n).astype(str),
            " ",
            STREETS[rng.integers(0, len(STREETS), n)],
            " Street",
        ),
        "postal_code": enc.strings(digits(5)),
    }


def _cap(values: np.ndarray, floor: np.ndarray | int) -> np.ndarray:
    """Keep times inside the window without piling them on its last second.

    A time past the end folds back into the 60 days before it, never before ``floor``
    (the row's own creation), so cursors near the end stay spread out like real traffic.
    """
    values = np.asarray(values, dtype=np.int64).copy()
    floor = np.broadcast_to(np.asarray(floor, dtype=np.int64), values.shape)
    over = values > WINDOW_END
    folded = WINDOW_END - (values[over] - WINDOW_END) % (60 * DAY)
    values[over] = np.minimum(np.maximum(folded, floor[over]), WINDOW_END)
    return values


def _order_by_time(*arrays: np.ndarray, time: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(time, kind="stable")
    return [a[order] for a in arrays]


class PlatformGenerator:
    """Builds the platform database for one (seed, scale, rates)."""

    def __init__(self, seed: int, scale: str, rates: DefectRates | None = None) -> None:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
        self.seed = seed
        self.scale_name = scale
        self.scale = SCALES[scale]
        self.rates = rates or DefectRates()
        self.planted = Planted()
        self.hard_deleted: dict[str, list[int]] = {}

    def rng(self, name: str) -> np.random.Generator:
        return table_rng(self.seed, name)

    # -- orchestration -------------------------------------------------------------------

    def tables(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """Yield ``(table, chunk)`` in load order; large tables come in several chunks."""
        yield "tenants", self._tenants()
        yield "users", self._users()
        yield "instructor_profiles", self._instructor_profiles()
        yield "courses", self._courses()
        yield "ebooks", self._ebooks()
        yield "subscriptions", self._subscriptions()
        yield "field_service_providers", self._providers()
        yield "field_service_orders", self._orders()
        yield "field_service_events", self._order_events()
        self._enrollments()
        payments, refunds = self._payments_and_refunds()
        yield "enrollments", self._enrollments_frame
        yield "payments", payments
        yield "refunds", refunds
        batches, payouts = self._payouts()
        yield "payout_batches", batches
        yield "payouts", payouts
        communities, members, posts = self._communities()
        yield "communities", communities
        yield "community_members", members
        yield "community_posts", posts
        yield "assessment_attempts", self._assessment_attempts()
        yield "moderation_cases", self._moderation_cases()
        yield "domain_events", self._domain_events()
        yield "learning_paths", self._learning_paths()
        yield "integrations", self._integrations()
        yield "webhooks", self._webhooks()
        yield from self._dark_matter()
        yield from (("activity_logs", chunk) for chunk in self._activity_logs())

    # -- tenants and people ------------------------------------------------------------------

    def _tenants(self) -> pd.DataFrame:
        n = self.scale.tenants
        profiles = [TENANT_PROFILES[i % len(TENANT_PROFILES)] for i in range(n)]
        suffix = [
            ("" if i < len(TENANT_PROFILES) else f" {i // len(TENANT_PROFILES) + 1}")
            for i in range(n)
        ]
        names = [p[0] + s for p, s in zip(profiles, suffix, strict=True)]
        self.tenant_currency = np.array([p[2] for p in profiles])
        self.tenant_tz = np.array([p[3] for p in profiles])
        # Tenant size follows a long tail: the first tenants are the big customers.
        weights = 1.0 / np.arange(1, n + 1) ** 0.8
        self.tenant_weights = weights / weights.sum()
        created = WINDOW_START - (np.arange(n, 0, -1) * 11 * DAY)
        return pd.DataFrame(
            {
                "id": enc.integers(np.arange(1, n + 1)),
                "name": enc.strings(np.array(names)),
                "slug": enc.strings(np.array([x.lower().replace(" ", "-") for x in names])),
                "region": enc.strings(np.array([p[1] for p in profiles])),
                "default_currency": enc.strings(self.tenant_currency),
                "reporting_timezone": enc.strings(self.tenant_tz),
                "created_at": enc.timestamps(created),
            }
        )

    def _users(self) -> pd.DataFrame:
        rng, s, r = self.rng("users"), self.scale, self.rates
        n = s.users
        tenant = rng.choice(s.tenants, size=n, p=self.tenant_weights) + 1
        created = np.sort(rng.integers(WINDOW_START - 60 * DAY, WINDOW_END - 45 * DAY, size=n))
        role = rng.choice(
            np.array(["learner", "instructor", "admin"]), size=n, p=[0.86, 0.11, 0.03]
        )
        first, last, email = person_names(rng, np.arange(1, n + 1))
        serial = np.arange(1, n + 1)
        # Duplicate people: a re-run seeder inserted the same person again, later, with an
        # email that differs only in case or surrounding spaces.
        dup_of = np.flatnonzero(_pick_mask(rng, n, r.duplicate_person))
        variants = np.array(["upper", "space", "same"])[rng.integers(0, 3, dup_of.size)]
        dup_email = email[dup_of].astype(object)
        for i, kind in enumerate(variants):
            if kind == "upper":
                dup_email[i] = dup_email[i][0].upper() + dup_email[i][1:]
            elif kind == "space":
                dup_email[i] = f" {dup_email[i]} "
        dup_created = np.minimum(
            created[dup_of] + rng.integers(DAY, 120 * DAY, dup_of.size), WINDOW_END - 40 * DAY
        )

        tenant = np.concatenate([tenant, tenant[dup_of]])
        created = np.concatenate([created, dup_created])
        role = np.concatenate([role, role[dup_of]])
        first = np.concatenate([first, first[dup_of]])
        last = np.concatenate([last, last[dup_of]])
        email_all = np.concatenate([email.astype(object), dup_email])
        person = np.concatenate([serial, serial[dup_of]])  # the person each row belongs to
        is_dup = np.concatenate([np.zeros(n, bool), np.ones(dup_of.size, bool)])
        tenant, created, role, first, last, email_all, person, is_dup = _order_by_time(
            tenant, created, role, first, last, email_all, person, is_dup, time=created
        )
        total = tenant.size
        ids = np.arange(1, total + 1)
        # The canonical id of a person is the smallest users.id sharing tenant + email.
        canonical = pd.Series(ids).groupby(person).transform("min").to_numpy()
        self.planted.add("duplicate_person", "users", ids[is_dup])

        # Role spellings: the canonical value, a case/synonym variant, or an unknown value.
        role_text = role.astype(object)
        variant = _pick_mask(rng, total, r.enum_variant)
        variant_spellings = {
            "learner": ["Learner", "LEARNER", "student"],
            "instructor": ["Instructor", "teacher", "INSTRUCTOR"],
            "admin": ["Admin", "ADMIN"],
        }
        for row in np.flatnonzero(variant):
            options = variant_spellings[role[row]]
            role_text[row] = options[rng.integers(0, len(options))]
        unknown = _pick_mask(rng, total, r.enum_unknown) & ~variant
        role_text[unknown] = np.array(["", "superuser"], dtype=object)[
            rng.integers(0, 2, unknown.sum())
        ]
        self.planted.add("enum_variant", "users.role", ids[variant])
        self.planted.add("enum_unknown", "users.role", ids[unknown])

        updated = _cap(created + rng.integers(0, 200 * DAY, total), created)
        deleted = np.full(total, -1, dtype=np.int64)
        soft = _pick_mask(rng, total, r.soft_delete)
        deleted[soft] = _cap(
            created[soft] + rng.integers(DAY, 300 * DAY, soft.sum()), created[soft]
        )
        updated[soft] = np.maximum(updated[soft], deleted[soft])
        self.planted.add("soft_delete", "users", ids[soft])

        two_factor = np.where(
            rng.random(total) < 0.4,
            _cap(created + rng.integers(HOUR, 400 * DAY, total), created),
            -1,
        )
        legacy = np.where(
            rng.random(total) < 0.3,
            rng.integers(WINDOW_START - 1500 * DAY, WINDOW_START - 100 * DAY, total),
            -1,
        )
        legacy_text = enc.timestamps(legacy)
        zero = _pick_mask(rng, total, r.zero_date)
        legacy_text[zero] = enc.ZERO_DATE
        self.planted.add("zero_date", "users.legacyImportedAt", ids[zero])

        self.users = pd.DataFrame(
            {
                "id": ids,
                "tenant": tenant,
                "created": created,
                "role": role,
                "canonical": canonical,
                "deleted": deleted,
            }
        )
        self.user_email = email_all
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(tenant),
                "email": enc.strings(email_all),
                "full_name": enc.join(first, " ", last),
                "role": role_text,
                **personal_details(rng, total),
                "marketing_consent": enc.integers(rng.random(total) < 0.55),
                "created_at": enc.timestamps(created),
                "updated_at": enc.timestamps(updated),
                "deleted_at": enc.timestamps(deleted),
                "twoFactorLastVerifiedAt": enc.timestamps(enc.new_york_wall_seconds(two_factor)),
                "legacyImportedAt": legacy_text,
            }
        )

    def _users_with_role(self, role: str) -> pd.DataFrame:
        return self.users[self.users["role"].to_numpy() == role]

    def _instructor_profiles(self) -> pd.DataFrame:
        rng = self.rng("instructor_profiles")
        inst = self._users_with_role("instructor")
        n = len(inst)
        created = inst["created"].to_numpy() + rng.integers(HOUR, 20 * DAY, n)
        share_cents = rng.integers(3700, 9701, n)  # 37.00 .. 97.00 percent
        tenant = inst["tenant"].to_numpy()
        payout_ccy = self.tenant_currency[tenant - 1].astype(object)
        payout_ccy[rng.random(n) < 0.15] = None  # not chosen yet: falls back downstream
        ids = np.arange(1, n + 1)
        self.instructors = pd.DataFrame(
            {
                "user_id": inst["id"].to_numpy(),
                "tenant": tenant,
                "share": share_cents / 100.0,
                "created": created,
            }
        )
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "user_id": enc.integers(inst["id"].to_numpy()),
                "accountId": enc.join("acct_", rng.integers(10**11, 10**12, n).astype(str)),
                "revenue_share_pct": enc.money(share_cents),
                "tax_id": enc.join("TX-", rng.integers(10**8, 10**9, n).astype(str)),
                "bank_account_number": enc.join(
                    "GB",
                    rng.integers(10, 99, n).astype(str),
                    "NWBK",
                    rng.integers(10**13, 10**14, n).astype(str),
                ),
                "payout_currency": payout_ccy,
                "created_at": enc.timestamps(created),
                "updated_at": enc.timestamps(_cap(created + rng.integers(0, 90 * DAY, n), created)),
            }
        )

    # -- catalogue -------------------------------------------------------------------------------

    def _priced_currency(
        self, rng: np.random.Generator, tenant: np.ndarray, table: str, ids_later: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The true currency of each row, and a mask of rows whose currency column is NULL.

        Only rows priced in the tenant's default currency may be NULL, so the documented
        fallback (tenant default) restores the truth.
        """
        n = tenant.size
        currency = self.tenant_currency[tenant - 1].astype(object)
        foreign = rng.random(n) < 0.08
        currency[foreign] = np.array(["USD", "EUR"], dtype=object)[
            rng.integers(0, 2, foreign.sum())
        ]
        is_default = currency == self.tenant_currency[tenant - 1]
        eligible = np.flatnonzero(is_default)
        null = np.zeros(n, dtype=bool)
        count = round(n * self.rates.null_currency)
        if count and eligible.size:
            null[rng.choice(eligible, size=min(count, eligible.size), replace=False)] = True
        return currency, null

    def _price_cents(
        self, rng: np.random.Generator, currency: np.ndarray, low: float, high: float
    ) -> np.ndarray:
        usd = rng.uniform(low, high, currency.size)
        level = np.array([PRICE_LEVEL[c] for c in currency])
        # Charm prices: whole units minus one cent, in the local price level.
        return (np.maximum(np.round(usd * level), 1) * 100 - 1).astype(np.int64)

    def _courses(self) -> pd.DataFrame:
        rng, s, r = self.rng("courses"), self.scale, self.rates
        inst = self.instructors
        # A long tail of instructors: a few write many courses, most write one or two.
        weight = rng.pareto(1.3, len(inst)) + 1
        owner = rng.choice(len(inst), size=s.courses, p=weight / weight.sum())
        user_id = inst["user_id"].to_numpy()[owner]
        tenant = inst["tenant"].to_numpy()[owner]
        created = np.minimum(
            inst["created"].to_numpy()[owner] + rng.integers(DAY, 300 * DAY, s.courses),
            WINDOW_END - 60 * DAY,
        )
        user_id, tenant, created = _order_by_time(user_id, tenant, created, time=created)
        n = s.courses
        ids = np.arange(1, n + 1)
        status = rng.choice(
            np.array(["published", "draft", "archived"]), size=n, p=[0.78, 0.12, 0.10]
        )
        published = np.where(
            status != "draft",
            np.minimum(created + rng.integers(HOUR, 45 * DAY, n), WINDOW_END - 30 * DAY),
            -1,
        )
        currency, null_ccy = self._priced_currency(rng, tenant, "courses")
        price = self._price_cents(rng, currency, 15, 250)
        free = rng.random(n) < 0.08
        price[free] = 0
        status_text = status.astype(object)
        variant = _pick_mask(rng, n, r.enum_variant)
        spellings = {
            "published": ["Published", "PUBLISHED", "live"],
            "draft": ["Draft", "DRAFT"],
            "archived": ["Archived", "ARCHIVED"],
        }
        for i in np.flatnonzero(variant):
            options = spellings[status[i]]
            status_text[i] = options[rng.integers(0, len(options))]
        unknown = _pick_mask(rng, n, r.enum_unknown) & ~variant
        status_text[unknown] = "pending_review"
        self.planted.add("enum_variant", "courses.status", ids[variant])
        self.planted.add("enum_unknown", "courses.status", ids[unknown])
        self.planted.add("null_currency", "courses.currency", ids[null_ccy])
        self.courses = pd.DataFrame(
            {
                "id": ids,
                "tenant": tenant,
                "instructor": user_id,
                "published": published,
                "price": price,
                "currency": currency,
                "sellable": (status != "draft") & ~unknown,
            }
        )
        title = enc.join(
            np.char.capitalize(CATEGORIES[rng.integers(0, len(CATEGORIES), n)].astype(str)),
            " course ",
            ids.astype(str),
        )
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(tenant),
                "instructor_id": enc.integers(user_id),
                "title": title,
                "slug": enc.join("course-", ids.astype(str)),
                "category": enc.strings(CATEGORIES[rng.integers(0, len(CATEGORIES), n)]),
                "level": enc.strings(LEVELS[rng.integers(0, len(LEVELS), n)]),
                "price_amount": enc.money(price),
                "currency": enc.strings(currency, null_ccy),
                "status": status_text,
                "published_at": enc.timestamps(published),
                "created_at": enc.timestamps(created),
                "updated_at": enc.timestamps(
                    np.maximum(published, created) + rng.integers(0, 30 * DAY, n)
                ),
            }
        )

    def _ebooks(self) -> pd.DataFrame:
        rng, s = self.rng("ebooks"), self.scale
        inst = self.instructors
        owner = rng.integers(0, len(inst), s.ebooks)
        created = np.minimum(
            inst["created"].to_numpy()[owner] + rng.integers(DAY, 200 * DAY, s.ebooks),
            WINDOW_END - 60 * DAY,
        )
        (owner, created) = _order_by_time(owner, created, time=created)
        n = s.ebooks
        ids = np.arange(1, n + 1)
        tenant = inst["tenant"].to_numpy()[owner]
        published = np.where(rng.random(n) < 0.9, created + rng.integers(HOUR, 20 * DAY, n), -1)
        currency, null_ccy = self._priced_currency(rng, tenant, "ebooks")
        price = self._price_cents(rng, currency, 5, 40)
        self.planted.add("null_currency", "ebooks.currency", ids[null_ccy])
        self.ebooks = pd.DataFrame(
            {
                "id": ids,
                "tenant": tenant,
                "published": published,
                "price": price,
                "currency": currency,
                "instructor": inst["user_id"].to_numpy()[owner],
            }
        )
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(tenant),
                "instructor_id": enc.integers(inst["user_id"].to_numpy()[owner]),
                "title": enc.join("Ebook ", ids.astype(str)),
                "price_amount": enc.money(price),
                "currency": enc.strings(currency, null_ccy),
                "published_at": enc.timestamps(published),
                "created_at": enc.timestamps(created),
                "updated_at": enc.timestamps(
                    np.maximum(published, created) + rng.integers(0, 10 * DAY, n)
                ),
            }
        )

    def _learners_of(
        self, rng: np.random.Generator, tenant: np.ndarray, by_tenure: bool = False
    ) -> np.ndarray:
        """A random learner (user row index) of each given tenant.

        ``by_tenure`` weighs learners by how long they have been on the platform, so that
        purchases spread over a learner's whole life instead of crowding the recent sign-ups
        into the last weeks of the window.
        """
        users = self.users
        out = np.empty(tenant.size, dtype=np.int64)
        learner = users["role"].to_numpy() == "learner"
        tenure = (WINDOW_END - np.maximum(users["created"].to_numpy(), WINDOW_START)).astype(float)
        for t in np.unique(tenant):
            pool = np.flatnonzero(learner & (users["tenant"].to_numpy() == t))
            where = np.flatnonzero(tenant == t)
            if by_tenure:
                weight = np.maximum(tenure[pool], DAY)
                out[where] = pool[rng.choice(pool.size, size=where.size, p=weight / weight.sum())]
            else:
                out[where] = pool[rng.integers(0, pool.size, where.size)]
        return out

    def _subscriptions(self) -> pd.DataFrame:
        rng, s = self.rng("subscriptions"), self.scale
        n = s.subscriptions
        tenant = rng.choice(s.tenants, size=n, p=self.tenant_weights) + 1
        user_row = self._learners_of(rng, tenant)
        started = np.maximum(
            self.users["created"].to_numpy()[user_row], WINDOW_START
        ) + rng.integers(0, 500 * DAY, n)
        started = np.minimum(started, WINDOW_END - 40 * DAY)
        tenant, user_row, started = _order_by_time(tenant, user_row, started, time=started)
        ids = np.arange(1, n + 1)
        plan = np.where(rng.random(n) < 0.75, "monthly", "annual")
        cancelled = np.where(
            rng.random(n) < 0.35, started + rng.integers(35 * DAY, 500 * DAY, n), -1
        )
        cancelled[cancelled > WINDOW_END] = -1
        status = np.where(
            cancelled >= 0, "cancelled", np.where(rng.random(n) < 0.06, "past_due", "active")
        )
        currency, null_ccy = self._priced_currency(rng, tenant, "subscriptions")
        monthly = self._price_cents(rng, currency, 9, 49)
        self.planted.add("null_currency", "subscriptions.currency", ids[null_ccy])
        self.subscriptions = pd.DataFrame(
            {
                "id": ids,
                "tenant": tenant,
                "user": self.users["id"].to_numpy()[user_row],
                "plan": plan,
                "started": started,
                "cancelled": cancelled,
                "monthly": monthly,
                "currency": currency,
            }
        )
        updated = np.where(cancelled >= 0, cancelled, started + rng.integers(0, 60 * DAY, n))
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(tenant),
                "user_id": enc.integers(self.users["id"].to_numpy()[user_row]),
                "plan": enc.strings(plan),
                "status": enc.strings(status),
                "monthly_amount": enc.money(monthly),
                "currency": enc.strings(currency, null_ccy),
                "started_at": enc.timestamps(started),
                "cancelled_at": enc.timestamps(cancelled),
                "updated_at": enc.timestamps(_cap(updated, started)),
            }
        )

    # -- field services --------------------------------------------------------------------------

    def _json_column(
        self, rng: np.random.Generator, text: np.ndarray, where: str, ids: np.ndarray
    ) -> np.ndarray:
        """Break a planted share of JSON documents the way real writers do (truncation, quotes)."""
        text = text.astype(object)
        bad = _pick_mask(rng, text.size, self.rates.malformed_json)
        for i in np.flatnonzero(bad):
            doc = text[i]
            text[i] = doc[: max(1, len(doc) // 2)] if rng.random() < 0.5 else doc.replace('"', "'")
        self.planted.add("malformed_json", where, ids[bad])
        return text

    def _providers(self) -> pd.DataFrame:
        rng, s = self.rng("field_service_providers"), self.scale
        n = s.providers
        tenant = rng.choice(s.tenants, size=n, p=self.tenant_weights) + 1
        user_row = self._learners_of(rng, tenant)
        joined = np.maximum(self.users["created"].to_numpy()[user_row], WINDOW_START)
        created = _cap(joined + rng.integers(0, 200 * DAY, n), joined)
        tenant, user_row, created = _order_by_time(tenant, user_row, created, time=created)
        ids = np.arange(1, n + 1)
        region = SERVICE_REGIONS[rng.integers(0, len(SERVICE_REGIONS), n)]
        first = SERVICE_TYPES[rng.integers(0, len(SERVICE_TYPES), n)]
        second = SERVICE_TYPES[rng.integers(0, len(SERVICE_TYPES), n)]
        types = enc.join('["', first, '", "', second, '"]')
        self.providers = pd.DataFrame(
            {"id": ids, "tenant": tenant, "region": region, "created": created}
        )
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(tenant),
                "user_id": enc.integers(self.users["id"].to_numpy()[user_row]),
                "region": enc.strings(region),
                "service_types": self._json_column(
                    rng, types, "field_service_providers.service_types", ids
                ),
                "rating": enc.money(rng.integers(250, 501, n)),
                "created_at": enc.timestamps(created),
                "updated_at": enc.timestamps(
                    _cap(created + rng.integers(0, 100 * DAY, n), created)
                ),
            }
        )

    def _orders(self) -> pd.DataFrame:
        rng, s = self.rng("field_service_orders"), self.scale
        n = s.orders
        tenant = rng.choice(s.tenants, size=n, p=self.tenant_weights) + 1
        user_row = self._learners_of(rng, tenant)
        requested = np.maximum(self.users["created"].to_numpy()[user_row], WINDOW_START + 30 * DAY)
        requested = requested + rng.integers(0, 600 * DAY, n)
        requested = np.minimum(requested, WINDOW_END - rng.integers(HOUR, 5 * DAY, n))
        tenant, user_row, requested = _order_by_time(tenant, user_row, requested, time=requested)
        ids = np.arange(1, n + 1)
        # Hours to match: log-normal, median about 10 h, so most but not all fill within 24 h.
        match_hours = rng.lognormal(np.log(10), 1.0, n)
        matched = requested + (match_hours * HOUR).astype(np.int64)
        outcome = rng.random(n)
        never_matched = outcome < 0.12
        matched[never_matched | (matched > WINDOW_END)] = -1
        completed = np.where(
            (matched >= 0) & (outcome > 0.2), matched + rng.integers(HOUR, 10 * DAY, n), -1
        )
        completed[completed > WINDOW_END] = -1
        cancelled = np.full(n, -1, dtype=np.int64)
        cancel_unmatched = never_matched & (outcome < 0.09)
        cancelled[cancel_unmatched] = requested[cancel_unmatched] + rng.integers(
            HOUR, 72 * HOUR, cancel_unmatched.sum()
        )
        cancel_matched = (matched >= 0) & (completed < 0) & (outcome > 0.12) & (outcome < 0.18)
        cancelled[cancel_matched] = matched[cancel_matched] + rng.integers(
            HOUR, 48 * HOUR, cancel_matched.sum()
        )
        cancelled[cancelled > WINDOW_END] = -1
        status = np.where(
            cancelled >= 0,
            "cancelled",
            np.where(
                completed >= 0,
                "completed",
                np.where(
                    matched >= 0,
                    np.where(rng.random(n) < 0.5, "matched", "in_progress"),
                    "requested",
                ),
            ),
        )
        provider = np.full(n, -1, dtype=np.int64)
        has_provider = matched >= 0
        prov_tenant = self.providers["tenant"].to_numpy()
        for t in np.unique(tenant):
            pool = self.providers["id"].to_numpy()[prov_tenant == t]
            if pool.size == 0:
                pool = self.providers["id"].to_numpy()
            where = np.flatnonzero(has_provider & (tenant == t))
            provider[where] = pool[rng.integers(0, pool.size, where.size)]
        currency, null_ccy = self._priced_currency(rng, tenant, "field_service_orders")
        quoted = self._price_cents(rng, currency, 40, 600)
        service = SERVICE_TYPES[rng.integers(0, len(SERVICE_TYPES), n)]
        region = SERVICE_REGIONS[rng.integers(0, len(SERVICE_REGIONS), n)]
        metadata = enc.join(
            '{"urgency": "',
            np.array(["low", "normal", "high"])[rng.integers(0, 3, n)],
            '", "access_notes": "gate code ',
            rng.integers(100, 999, n).astype(str),
            '", "estimated_hours": ',
            rng.integers(1, 9, n).astype(str),
            "}",
        )
        self.planted.add("null_currency", "field_service_orders.currency", ids[null_ccy])
        last = np.maximum.reduce([requested, matched, completed, cancelled])
        self.orders = pd.DataFrame(
            {
                "id": ids,
                "tenant": tenant,
                "user": self.users["id"].to_numpy()[user_row],
                "requested": requested,
                "matched": matched,
                "completed": completed,
                "cancelled": cancelled,
                "quoted": quoted,
                "currency": currency,
            }
        )
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(tenant),
                "customer_id": enc.integers(self.users["id"].to_numpy()[user_row]),
                "provider_id": enc.integers(provider, provider < 0),
                "service_type": enc.strings(service),
                "region": enc.strings(region),
                "status": enc.strings(status),
                "quoted_amount": enc.money(quoted),
                "currency": enc.strings(currency, null_ccy),
                "metadata": self._json_column(rng, metadata, "field_service_orders.metadata", ids),
                "requested_at": enc.timestamps(requested),
                "matched_at": enc.timestamps(matched),
                "completed_at": enc.timestamps(completed),
                "cancelled_at": enc.timestamps(cancelled),
                "updated_at": enc.timestamps(last),
            }
        )

    def _order_events(self) -> pd.DataFrame:
        rng = self.rng("field_service_events")
        o = self.orders
        parts = []
        for kind, column in (
            ("requested", "requested"),
            ("matched", "matched"),
            ("completed", "completed"),
            ("cancelled", "cancelled"),
        ):
            at = o[column].to_numpy()
            keep = at >= 0
            parts.append(
                pd.DataFrame({"order": o["id"].to_numpy()[keep], "type": kind, "at": at[keep]})
            )
        events = pd.concat(parts, ignore_index=True).sort_values(["at", "order"], kind="stable")
        n = len(events)
        ids = np.arange(1, n + 1)
        payload = enc.join(
            '{"order_id": ',
            events["order"].to_numpy().astype(str),
            ', "source": "',
            np.array(["app", "web", "ops"])[rng.integers(0, 3, n)],
            '"}',
        )
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "order_id": enc.integers(events["order"].to_numpy()),
                "event_type": enc.strings(events["type"].to_numpy()),
                "payload": self._json_column(rng, payload, "field_service_events.payload", ids),
                "occurred_at": enc.timestamps(events["at"].to_numpy()),
            }
        )

    # -- learning and money ---------------------------------------------------------------------

    def _enrollments(self) -> None:
        """Draw enrollments; their frame is finished once payments decide which were refunded."""
        rng, s, r = self.rng("enrollments"), self.scale, self.rates
        n = s.enrollments
        courses = self.courses[self.courses["sellable"].to_numpy()]
        # Course popularity is skewed: a few best-sellers, a long tail of quiet courses.
        popularity = rng.pareto(1.1, len(courses)) + 0.05
        # ... and a course sells for as long as it has been on sale, not all in its first weeks.
        on_sale = WINDOW_END - np.maximum(courses["published"].to_numpy(), WINDOW_START)
        popularity = popularity * np.maximum(on_sale, DAY)
        course_row = np.empty(n, dtype=np.int64)
        tenant = rng.choice(s.tenants, size=n, p=self.tenant_weights) + 1
        c_tenant = courses["tenant"].to_numpy()
        for t in np.unique(tenant):
            pool = np.flatnonzero(c_tenant == t)
            where = np.flatnonzero(tenant == t)
            if pool.size == 0:
                pool = np.arange(len(courses))
            w = popularity[pool] / popularity[pool].sum()
            course_row[where] = pool[rng.choice(pool.size, size=where.size, p=w)]
        tenant = c_tenant[course_row]
        user_row = self._learners_of(rng, tenant, by_tenure=True)
        floor = np.maximum(
            courses["published"].to_numpy()[course_row], self.users["created"].to_numpy()[user_row]
        )
        floor = np.maximum(floor, WINDOW_START)
        span = np.maximum(WINDOW_END - 2 * DAY - floor, HOUR)
        enrolled = floor + (rng.random(n) ** 1.3 * span).astype(np.int64)
        course_row, user_row, enrolled = _order_by_time(
            course_row, user_row, enrolled, time=enrolled
        )
        tenant = c_tenant[
            course_row
        ]  # follow the new row order: an enrollment is its course's tenant's
        ids = np.arange(1, n + 1)
        course_id = courses["id"].to_numpy()[course_row]
        status = rng.choice(
            np.array(["active", "completed", "cancelled"]), size=n, p=[0.6, 0.32, 0.08]
        )
        progress = np.where(status == "completed", 10000, rng.integers(0, 9901, n))
        completed = np.where(status == "completed", enrolled + rng.integers(DAY, 120 * DAY, n), -1)
        over = completed > WINDOW_END
        status[over] = "active"
        progress[over] = 9500
        completed[over] = -1
        updated = np.where(completed >= 0, completed, enrolled + rng.integers(0, 60 * DAY, n))
        updated = _cap(updated, enrolled)
        # Stale cursor: progress moved on (and the course was finished) but updated_at was not bumped.
        stale = _pick_mask(rng, n, r.stale_cursor) & (completed >= 0)
        updated[stale] = np.maximum(
            enrolled[stale], completed[stale] - rng.integers(DAY, 20 * DAY, stale.sum())
        )
        self.planted.add("stale_cursor", "enrollments", ids[stale])
        channel = rng.choice(
            np.array(["organic", "paid_ads", "referral", "community", ""]),
            size=n,
            p=[0.45, 0.22, 0.13, 0.1, 0.1],
        ).astype(object)
        channel[channel == ""] = None
        self.enrollments = pd.DataFrame(
            {
                "id": ids,
                "tenant": tenant,
                "course_row": course_row,
                "course": course_id,
                "user_row": user_row,
                "user": self.users["id"].to_numpy()[user_row],
                "enrolled": enrolled,
                "status": status,
            }
        )
        self._enrollment_columns = {
            "id": enc.integers(ids),
            "tenant_id": enc.integers(tenant),
            "user_id": enc.integers(self.users["id"].to_numpy()[user_row]),
            "course_id": enc.integers(course_id),
            "status": status,
            "acquisition_channel": channel,
            "progress_pct": enc.money(progress),
            "enrolled_at": enc.timestamps(enrolled),
            "completed_at": enc.timestamps(completed),
            "created_at": enc.timestamps(enrolled),
            "updated_at": enc.timestamps(updated),
        }
        self._courses_frame = courses

    def _payments_and_refunds(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        rng, r = self.rng("payments"), self.rates
        e, courses = self.enrollments, self._courses_frame
        tz_ccy = self.tenant_currency
        frames = []
        # Course purchases: one captured payment per paid enrollment, moments before it.
        price = courses["price"].to_numpy()[e["course_row"].to_numpy()]
        paid = price > 0
        frames.append(
            pd.DataFrame(
                {
                    "tenant": e["tenant"].to_numpy()[paid],
                    "user": e["user"].to_numpy()[paid],
                    "type": "course",
                    "product": e["course"].to_numpy()[paid],
                    "enrollment": e["id"].to_numpy()[paid],
                    "cents": price[paid],
                    "currency": courses["currency"].to_numpy()[e["course_row"].to_numpy()][paid],
                    "at": e["enrolled"].to_numpy()[paid] - rng.integers(5, 180, paid.sum()),
                }
            )
        )
        # Ebook sales.
        eb = self.ebooks[self.ebooks["published"].to_numpy() >= 0]
        k = self.scale.ebook_sales
        row = rng.integers(0, len(eb), k)
        buyer = self._learners_of(rng, eb["tenant"].to_numpy()[row], by_tenure=True)
        floor = np.maximum(eb["published"].to_numpy()[row], self.users["created"].to_numpy()[buyer])
        at = floor + (rng.random(k) * np.maximum(WINDOW_END - DAY - floor, HOUR)).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "tenant": eb["tenant"].to_numpy()[row],
                    "user": self.users["id"].to_numpy()[buyer],
                    "type": "ebook",
                    "product": eb["id"].to_numpy()[row],
                    "enrollment": -1,
                    "cents": eb["price"].to_numpy()[row],
                    "currency": eb["currency"].to_numpy()[row],
                    "at": at,
                }
            )
        )
        # Subscription charges: every month (monthly plan) or year (annual plan) while active.
        sub = self.subscriptions
        step = np.where(sub["plan"].to_numpy() == "monthly", 30 * DAY, 365 * DAY)
        end = np.where(sub["cancelled"].to_numpy() >= 0, sub["cancelled"].to_numpy(), WINDOW_END)
        count = np.maximum((end - sub["started"].to_numpy()) // step + 1, 1)
        rep = np.repeat(np.arange(len(sub)), count)
        nth = np.arange(rep.size) - np.repeat(np.cumsum(count) - count, count)
        charge = (
            np.where(sub["plan"].to_numpy()[rep] == "monthly", 1, 12)
            * sub["monthly"].to_numpy()[rep]
        )
        frames.append(
            pd.DataFrame(
                {
                    "tenant": sub["tenant"].to_numpy()[rep],
                    "user": sub["user"].to_numpy()[rep],
                    "type": "subscription",
                    "product": sub["id"].to_numpy()[rep],
                    "enrollment": -1,
                    "cents": charge,
                    "currency": sub["currency"].to_numpy()[rep],
                    "at": sub["started"].to_numpy()[rep] + nth * step[rep],
                }
            )
        )
        # Completed service orders are paid on completion.
        o = self.orders[self.orders["completed"].to_numpy() >= 0]
        frames.append(
            pd.DataFrame(
                {
                    "tenant": o["tenant"].to_numpy(),
                    "user": o["user"].to_numpy(),
                    "type": "service_order",
                    "product": o["id"].to_numpy(),
                    "enrollment": -1,
                    "cents": o["quoted"].to_numpy(),
                    "currency": o["currency"].to_numpy(),
                    "at": o["completed"].to_numpy() + rng.integers(60, 3600, len(o)),
                }
            )
        )
        captured = pd.concat(frames, ignore_index=True)
        m = len(captured)
        outcome = rng.random(m)
        status = np.where(
            outcome < 0.045, "refunded", np.where(outcome < 0.08, "partially_refunded", "succeeded")
        )
        captured["status"] = status
        # Failed attempts (a card declined, then retried) and checkouts still pending.
        fail = captured.sample(n=int(m * 0.05), random_state=int(rng.integers(0, 2**31))).copy()
        fail["status"], fail["enrollment"] = "failed", -1
        fail["at"] = fail["at"] - rng.integers(60, 900, len(fail))
        pend = captured.sample(n=int(m * 0.012), random_state=int(rng.integers(0, 2**31))).copy()
        pend["status"], pend["enrollment"] = "pending", -1
        pend["at"] = _cap(
            pend["at"].to_numpy() + rng.integers(DAY, 30 * DAY, len(pend)), pend["at"].to_numpy()
        )
        pay = pd.concat([captured, fail, pend], ignore_index=True)
        pay["at"] = _cap(np.maximum(pay["at"].to_numpy(), WINDOW_START), WINDOW_START)
        pay = pay.sort_values("at", kind="stable").reset_index(drop=True)
        n = len(pay)
        ids = np.arange(1, n + 1)
        pay["id"] = ids
        at = pay["at"].to_numpy()
        currency = pay["currency"].to_numpy().astype(object)
        tenant = pay["tenant"].to_numpy()
        is_default = currency == tz_ccy[tenant - 1]
        null_ccy = np.zeros(n, dtype=bool)
        eligible = np.flatnonzero(is_default)
        count_null = round(n * r.null_currency)
        null_ccy[rng.choice(eligible, size=min(count_null, eligible.size), replace=False)] = True
        processor = np.where(rng.random(n) < 0.7, "stripe", "paypal")
        cents = pay["cents"].to_numpy()
        fee = np.where(
            processor == "stripe", np.round(cents * 0.029 + 30), np.round(cents * 0.0349 + 49)
        ).astype(np.int64)
        no_fee = rng.random(n) < 0.04
        status = pay["status"].to_numpy().astype(object)
        status_text = status.copy()
        variant = _pick_mask(rng, n, r.enum_variant)
        spellings = {
            "succeeded": ["SUCCEEDED", "Succeeded", "success"],
            "failed": ["FAILED", "Failed"],
            "pending": ["Pending", "PENDING"],
            "refunded": ["Refunded", "REFUNDED"],
            "partially_refunded": ["Partially_Refunded", "PARTIALLY_REFUNDED"],
        }
        for i in np.flatnonzero(variant):
            options = spellings[status[i]]
            status_text[i] = options[rng.integers(0, len(options))]
        unknown = _pick_mask(rng, n, r.enum_unknown) & ~variant & (status == "succeeded")
        status_text[unknown] = np.array(["chargeback_review", "disputed"], dtype=object)[
            rng.integers(0, 2, unknown.sum())
        ]
        status[unknown] = "unknown"
        self.planted.add("enum_variant", "payments.status", ids[variant])
        self.planted.add("enum_unknown", "payments.status", ids[unknown])
        self.planted.add("null_currency", "payments.currency", ids[null_ccy])
        updated = at + np.where(
            np.isin(status, ["refunded", "partially_refunded"]),
            rng.integers(DAY, 60 * DAY, n),
            rng.integers(0, 120, n),
        )

        # Refunds: one full refund, or one or two partial ones, days to months later.
        refund_rows = []
        full = np.flatnonzero(status == "refunded")
        refund_rows.append(
            pd.DataFrame(
                {
                    "payment": ids[full],
                    "cents": cents[full],
                    "at": at[full] + rng.integers(HOUR, 90 * DAY, full.size),
                    "reason": "requested_by_customer",
                }
            )
        )
        part = np.flatnonzero(status == "partially_refunded")
        share = rng.uniform(0.1, 0.6, part.size)
        first = np.maximum((cents[part] * share).astype(np.int64), 1)
        refund_rows.append(
            pd.DataFrame(
                {
                    "payment": ids[part],
                    "cents": first,
                    "at": at[part] + rng.integers(HOUR, 120 * DAY, part.size),
                    "reason": "partial_credit",
                }
            )
        )
        twice = part[rng.random(part.size) < 0.25]
        second = np.maximum(
            ((cents[twice] - first[np.searchsorted(part, twice)]) * 0.3).astype(np.int64), 1
        )
        refund_rows.append(
            pd.DataFrame(
                {
                    "payment": ids[twice],
                    "cents": second,
                    "at": at[twice] + rng.integers(30 * DAY, 400 * DAY, twice.size),
                    "reason": "goodwill",
                }
            )
        )
        refunds = pd.concat(refund_rows, ignore_index=True)
        refunds["at"] = _cap(refunds["at"].to_numpy(), at[refunds["payment"].to_numpy() - 1])
        refunds = refunds.sort_values("at", kind="stable").reset_index(drop=True)
        refund_ids = np.arange(1, len(refunds) + 1)
        last_refund = refunds.groupby("payment")["at"].max()
        updated[last_refund.index.to_numpy() - 1] = np.maximum(
            updated[last_refund.index.to_numpy() - 1], last_refund.to_numpy()
        )

        # Orphan refunds: their payments were hard-deleted from the source long ago.
        orphan = _pick_mask(rng, len(refunds), r.orphan)
        gone = np.unique(refunds["payment"].to_numpy()[orphan])
        orphan = np.isin(refunds["payment"].to_numpy(), gone)
        self.planted.add("orphan", "refunds.payment_id", refund_ids[orphan])
        self.hard_deleted["payments"] = sorted(int(x) for x in gone)
        keep = ~np.isin(ids, gone)
        for defect in ("enum_variant", "enum_unknown"):
            where = self.planted.defects.get(defect, {}).get("payments.status")
            if where:
                self.planted.defects[defect]["payments.status"] = [
                    i for i in where if i not in set(gone)
                ]
        nulls = self.planted.defects["null_currency"]["payments.currency"]
        self.planted.defects["null_currency"]["payments.currency"] = [
            i for i in nulls if i not in set(gone)
        ]

        self.payments = pd.DataFrame(
            {
                "id": ids,
                "tenant": tenant,
                "status": status,
                "at": at,
                "cents": cents,
                "currency": currency,
                "type": pay["type"].to_numpy(),
                "product": pay["product"].to_numpy(),
                "user": pay["user"].to_numpy(),
                "kept": keep,
            }
        )
        # Enrollments of fully refunded course payments are marked refunded.
        refunded_enr = pay["enrollment"].to_numpy()[
            (status == "refunded") & (pay["type"].to_numpy() == "course")
        ]
        enr_status = self._enrollment_columns["status"].astype(object)
        enr_status[np.isin(self.enrollments["id"].to_numpy(), refunded_enr)] = "refunded"
        self._enrollment_columns["status"] = enr_status
        self._enrollments_frame = pd.DataFrame(self._enrollment_columns)

        payments = pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(tenant),
                "user_id": enc.integers(pay["user"].to_numpy()),
                "product_type": enc.strings(pay["type"].to_numpy()),
                "product_id": enc.integers(pay["product"].to_numpy()),
                "enrollment_id": enc.integers(
                    pay["enrollment"].to_numpy(), pay["enrollment"].to_numpy() < 0
                ),
                "amount": enc.money(cents),
                "currency": enc.strings(currency, null_ccy),
                "processor": enc.strings(processor),
                "processor_fee": enc.money(fee, no_fee),
                "status": status_text,
                "created_at": enc.timestamps(enc.new_york_wall_seconds(at)),
                "updated_at": enc.timestamps(_cap(updated, at)),
            }
        )[keep].reset_index(drop=True)
        refunds_out = pd.DataFrame(
            {
                "id": enc.integers(refund_ids),
                "payment_id": enc.integers(refunds["payment"].to_numpy()),
                "amount": enc.money(refunds["cents"].to_numpy()),
                "reason": enc.strings(refunds["reason"].to_numpy()),
                "created_at": enc.timestamps(refunds["at"].to_numpy()),
            }
        )
        return payments, refunds_out

    def _payouts(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        rng = self.rng("payouts")
        p = self.payments[
            self.payments["kept"].to_numpy()
            & np.isin(self.payments["status"].to_numpy(), ["succeeded", "partially_refunded"])
            & np.isin(self.payments["type"].to_numpy(), ["course", "ebook"])
        ]
        course_owner = dict(zip(self.courses["id"], self.courses["instructor"], strict=True))
        ebook_owner = dict(zip(self.ebooks["id"], self.ebooks["instructor"], strict=True))
        product = pd.Series(p["product"].to_numpy())
        owner = np.where(
            p["type"].to_numpy() == "course",
            product.map(course_owner).to_numpy(),
            product.map(ebook_owner).to_numpy(),
        )
        month = p["at"].to_numpy().astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
        share = dict(zip(self.instructors["user_id"], self.instructors["share"], strict=True))
        frame = pd.DataFrame(
            {
                "instructor": owner,
                "tenant": p["tenant"].to_numpy(),
                "month": month,
                "cents": p["cents"].to_numpy(),
            }
        )
        frame = frame[frame["instructor"] >= 0]
        agg = frame.groupby(["instructor", "tenant", "month"], as_index=False)["cents"].sum()
        agg["earn"] = (agg["cents"] * agg["instructor"].map(share) / 100).round().astype(np.int64)
        months = np.sort(agg["month"].unique()).astype("datetime64[M]")
        # One payout batch per month, created five days after the month closes.
        batch_created = (months + np.timedelta64(1, "M")).astype("datetime64[s]").astype(
            np.int64
        ) + 5 * DAY
        batch_ids = np.arange(1, months.size + 1)
        agg = agg.sort_values(["month", "instructor"], kind="stable").reset_index(drop=True)
        n = len(agg)
        ids = np.arange(1, n + 1)
        month_of = agg["month"].to_numpy().astype(np.int64).astype("datetime64[M]")
        period_start = month_of.astype("datetime64[s]").astype(np.int64)
        period_end = (month_of + np.timedelta64(1, "M")).astype("datetime64[s]").astype(
            np.int64
        ) - DAY
        batch = np.searchsorted(months, month_of) + 1
        created = period_end + DAY + 5 * DAY
        paid_at = created + rng.integers(DAY, 10 * DAY, n)
        status = np.where(rng.random(n) < 0.03, "failed", "paid").astype(object)
        status[paid_at > WINDOW_END] = "scheduled"
        paid_at[status != "paid"] = -1
        payout_ccy = self.tenant_currency[agg["tenant"].to_numpy() - 1]
        # Orphan payouts: the batches they name were deleted by a cleanup script.
        gone_batches = batch_ids[_pick_mask(rng, batch_ids.size, max(self.rates.orphan * 3, 0.0))]
        exists = created <= WINDOW_END  # the last period's payouts are not created yet
        orphan = np.isin(batch, gone_batches) & exists
        self.planted.add("orphan", "payouts.batch_id", ids[orphan])
        self.hard_deleted["payout_batches"] = sorted(int(x) for x in gone_batches)
        keep_batch = ~np.isin(batch_ids, gone_batches)
        batches = pd.DataFrame(
            {
                "id": enc.integers(batch_ids[keep_batch]),
                "status": enc.strings(
                    np.where(batch_created[keep_batch] > WINDOW_END, "open", "completed")
                ),
                "created_at": enc.timestamps(np.minimum(batch_created[keep_batch], WINDOW_END)),
            }
        )
        payouts = pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(agg["tenant"].to_numpy()),
                "instructor_id": enc.integers(agg["instructor"].to_numpy()),
                "batch_id": enc.integers(batch),
                "amount": enc.money(agg["earn"].to_numpy()),
                "currency": enc.strings(payout_ccy),
                "status": enc.strings(status),
                "period_start": enc.dates(period_start),
                "period_end": enc.dates(period_end),
                "paid_at": enc.timestamps(paid_at),
                "created_at": enc.timestamps(created),
                "updated_at": enc.timestamps(np.where(paid_at >= 0, paid_at, created)),
            }
        )[exists].reset_index(drop=True)
        return batches, payouts

    # -- community -----------------------------------------------------------------------------------

    def _communities(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        rng, s = self.rng("communities"), self.scale
        n = s.communities
        tenant = rng.choice(s.tenants, size=n, p=self.tenant_weights) + 1
        owner_row = self._learners_of(rng, tenant)
        created = np.maximum(
            self.users["created"].to_numpy()[owner_row], WINDOW_START
        ) + rng.integers(0, 300 * DAY, n)
        created = np.minimum(created, WINDOW_END - 90 * DAY)
        tenant, owner_row, created = _order_by_time(tenant, owner_row, created, time=created)
        ids = np.arange(1, n + 1)
        archived = np.where(rng.random(n) < 0.1, created + rng.integers(30 * DAY, 300 * DAY, n), -1)
        archived[archived > WINDOW_END] = -1
        metadata = enc.join(
            '{"theme": "',
            np.array(["dark", "light", "ocean"])[rng.integers(0, 3, n)],
            '", "max_members": ',
            rng.integers(50, 5000, n).astype(str),
            ', "tags": ["',
            CATEGORIES[rng.integers(0, len(CATEGORIES), n)],
            '"]}',
        )
        # Some communities were hard-deleted; their posts stayed behind (no cascade), their
        # memberships went with them (cascade).
        gone = ids[_pick_mask(rng, n, max(self.rates.orphan * 2, 0.0))]
        if gone.size == 0 and self.rates.orphan > 0:
            gone = ids[-1:]
        self.hard_deleted["communities"] = sorted(int(x) for x in gone)
        keep = ~np.isin(ids, gone)
        metadata_text = self._json_column(rng, metadata, "communities.metadata", ids)
        bad = self.planted.defects["malformed_json"]["communities.metadata"]
        self.planted.defects["malformed_json"]["communities.metadata"] = [
            i for i in bad if i not in set(gone)
        ]
        communities = pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(tenant),
                "owner_id": enc.integers(self.users["id"].to_numpy()[owner_row]),
                "name": enc.join("Community ", ids.astype(str)),
                "slug": enc.join("community-", ids.astype(str)),
                "visibility": enc.strings(np.where(rng.random(n) < 0.7, "public", "private")),
                "metadata": metadata_text,
                "created_at": enc.timestamps(created),
                "archived_at": enc.timestamps(archived),
                "updated_at": enc.timestamps(
                    np.maximum(created + rng.integers(0, 60 * DAY, n), archived)
                ),
            }
        )[keep].reset_index(drop=True)

        m = s.members
        comm = rng.integers(0, n, m)
        member_row = self._learners_of(rng, tenant[comm])
        eligible = np.maximum(created[comm], self.users["created"].to_numpy()[member_row])
        joined = _cap(eligible + rng.integers(0, 200 * DAY, m), eligible)
        comm, member_row, joined = _order_by_time(comm, member_row, joined, time=joined)
        left = np.where(rng.random(m) < 0.15, joined + rng.integers(DAY, 200 * DAY, m), -1)
        left[left > WINDOW_END] = -1
        keep_m = ~np.isin(ids[comm], gone)
        members = pd.DataFrame(
            {
                "id": enc.integers(np.arange(1, m + 1)),
                "community_id": enc.integers(ids[comm]),
                "user_id": enc.integers(self.users["id"].to_numpy()[member_row]),
                "role": enc.strings(
                    rng.choice(np.array(["member", "moderator"]), size=m, p=[0.95, 0.05])
                ),
                "joined_at": enc.timestamps(joined),
                "left_at": enc.timestamps(left),
            }
        )[keep_m].reset_index(drop=True)

        k = s.posts
        pc = rng.integers(0, n, k)
        author_row = self._learners_of(rng, tenant[pc])
        opened = np.maximum(created[pc], WINDOW_START)
        at = _cap(opened + rng.integers(HOUR, 400 * DAY, k), opened)
        pc, author_row, at = _order_by_time(pc, author_row, at, time=at)
        post_ids = np.arange(1, k + 1)
        self.planted.add("orphan", "community_posts.community_id", post_ids[np.isin(ids[pc], gone)])
        body = enc.join(
            "Sharing my notes on ",
            CATEGORIES[rng.integers(0, len(CATEGORIES), k)],
            ".\nWhat do you think? 🚀",
        )
        posts = pd.DataFrame(
            {
                "id": enc.integers(post_ids),
                "community_id": enc.integers(ids[pc]),
                "author_id": enc.integers(self.users["id"].to_numpy()[author_row]),
                "title": enc.join("Post ", post_ids.astype(str)),
                "body": body,
                "created_at": enc.timestamps(at),
                "updated_at": enc.timestamps(_cap(at + rng.integers(0, 5 * DAY, k), at)),
            }
        )
        return communities, members, posts

    # -- the rest of the schema -------------------------------------------------------------------------

    def _assessment_attempts(self) -> pd.DataFrame:
        rng = self.rng("assessment_attempts")
        e = self.enrollments
        n = self.scale.attempts
        row = rng.integers(0, len(e), n)
        at = _cap(
            e["enrolled"].to_numpy()[row] + rng.integers(HOUR, 90 * DAY, n),
            e["enrolled"].to_numpy()[row],
        )
        (row, at) = _order_by_time(row, at, time=at)
        ids = np.arange(1, n + 1)
        course = e["course"].to_numpy()[row].copy()
        orphan = _pick_mask(rng, n, self.rates.orphan)
        max_course = int(self.courses["id"].max())
        course[orphan] = max_course + rng.integers(1, 500, orphan.sum())
        self.planted.add("orphan", "assessment_attempts.course_id", ids[orphan])
        max_score = np.full(n, 10000)
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "user_id": enc.integers(e["user"].to_numpy()[row]),
                "course_id": enc.integers(course),
                "score": enc.money(rng.integers(0, 10001, n)),
                "max_score": enc.money(max_score),
                "attempted_at": enc.timestamps(at),
            }
        )

    def _moderation_cases(self) -> pd.DataFrame:
        rng, s = self.rng("moderation_cases"), self.scale
        n = s.moderation
        tenant = rng.choice(s.tenants, size=n, p=self.tenant_weights) + 1
        created = np.sort(rng.integers(WINDOW_START, WINDOW_END - DAY, n))
        decided = np.where(rng.random(n) < 0.85, created + rng.integers(600, 10 * DAY, n), -1)
        decided[decided > WINDOW_END] = -1
        decision = rng.choice(
            np.array(["approved", "removed", "escalated"]), size=n, p=[0.5, 0.4, 0.1]
        ).astype(object)
        decision[decided < 0] = None
        admins = self._users_with_role("admin")["id"].to_numpy()
        moderator = admins[rng.integers(0, admins.size, n)]
        return pd.DataFrame(
            {
                "id": enc.integers(np.arange(1, n + 1)),
                "tenant_id": enc.integers(tenant),
                "target_type": enc.strings(
                    np.array(["post", "user", "course", "community"])[rng.integers(0, 4, n)]
                ),
                "target_id": enc.integers(rng.integers(1, 1000, n)),
                "reason": enc.strings(
                    np.array(["spam", "harassment", "copyright", "off_topic"])[
                        rng.integers(0, 4, n)
                    ]
                ),
                "decision": decision,
                "moderator_id": enc.integers(moderator, decided < 0),
                "created_at": enc.timestamps(created),
                "decided_at": enc.timestamps(decided),
            }
        )

    def _domain_events(self) -> pd.DataFrame:
        rng = self.rng("domain_events")
        n = self.scale.domain_events
        at = np.sort(rng.integers(WINDOW_START, WINDOW_END, n))
        ids = np.arange(1, n + 1)
        kind = np.array(["course", "community"])[rng.integers(0, 2, n)]
        agg_id = rng.integers(1, 100, n)
        payload = enc.join('{"', kind, '_id": ', agg_id.astype(str), ', "actor": "system"}')
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "aggregate_type": enc.strings(kind),
                "aggregate_id": enc.integers(agg_id),
                "event_type": enc.strings(np.char.add(kind.astype(str), ".updated")),
                "payload": self._json_column(rng, payload, "domain_events.payload", ids),
                "occurred_at": enc.timestamps(at),
            }
        )

    def _learning_paths(self) -> pd.DataFrame:
        rng, s = self.rng("learning_paths"), self.scale
        n = s.learning_paths
        ids = np.arange(1, n + 1)
        region = rng.integers(1, 12, n)
        no_region = rng.random(n) < 0.2
        # There is no regions table at all: every non-NULL region_id is an orphan.
        self.planted.add("orphan", "learning_paths.region_id", ids[~no_region])
        return pd.DataFrame(
            {
                "id": enc.integers(ids),
                "tenant_id": enc.integers(rng.choice(s.tenants, size=n, p=self.tenant_weights) + 1),
                "region_id": enc.integers(region, no_region),
                "title": enc.join("Path ", ids.astype(str)),
                "created_at": enc.timestamps(np.sort(rng.integers(WINDOW_START, WINDOW_END, n))),
            }
        )

    def _integrations(self) -> pd.DataFrame:
        rng, s = self.rng("integrations"), self.scale
        n = 2 * s.tenants
        return pd.DataFrame(
            {
                "id": enc.integers(np.arange(1, n + 1)),
                "tenant_id": enc.integers(np.arange(n) % s.tenants + 1),
                "provider": enc.strings(
                    np.array(["zoom", "mailchimp", "hubspot", "slack"])[rng.integers(0, 4, n)]
                ),
                "api_key": enc.join(
                    "sk_live_", np.array([f"{x:016x}" for x in rng.integers(0, 2**62, n)])
                ),
                "created_at": enc.timestamps(np.sort(rng.integers(WINDOW_START, WINDOW_END, n))),
            }
        )

    def _webhooks(self) -> pd.DataFrame:
        rng, s = self.rng("webhooks"), self.scale
        n = s.tenants
        return pd.DataFrame(
            {
                "id": enc.integers(np.arange(1, n + 1)),
                "tenant_id": enc.integers(np.arange(1, n + 1)),
                "url": enc.join("https://hooks.example.com/t/", np.arange(1, n + 1).astype(str)),
                "secret": enc.join(
                    "whsec_", np.array([f"{x:016x}" for x in rng.integers(0, 2**62, n)])
                ),
                "created_at": enc.timestamps(np.sort(rng.integers(WINDOW_START, WINDOW_END, n))),
            }
        )

    def _dark_matter(self) -> Iterator[tuple[str, pd.DataFrame]]:
        at = enc.timestamps(np.array([WINDOW_START + DAY, WINDOW_START + 2 * DAY]))
        yield (
            "course_drip_schedules",
            pd.DataFrame(
                {
                    "id": ["1", "2"],
                    "course_id": ["1", "2"],
                    "release_offset_days": ["7", "14"],
                    "created_at": at,
                }
            ),
        )
        yield (
            "ads_governance_rules",
            pd.DataFrame(
                {
                    "id": ["1"],
                    "rule_name": ["no_competitor_ads"],
                    "definition": ['{"enabled": false}'],
                    "created_at": at[:1],
                }
            ),
        )
        yield (
            "data_partitions",
            pd.DataFrame(
                {
                    "id": ["1"],
                    "table_name": ["activity_logs"],
                    "partition_key": ["events_2024_q1"],
                    "created_at": at[:1],
                }
            ),
        )

    def _activity_logs(self) -> Iterator[pd.DataFrame]:
        """The bulk: append-only, generated in time-ordered chunks so memory stays flat."""
        rng = self.rng("activity_logs")
        users = self.users
        e = self.enrollments
        total = self.scale.activity
        chunks = max(1, -(-total // ACTIVITY_CHUNK_ROWS))
        edges = np.linspace(WINDOW_START, WINDOW_END, chunks + 1).astype(np.int64)
        next_id = 1
        for c in range(chunks):
            n = total // chunks + (1 if c < total % chunks else 0)
            at = np.sort(rng.integers(edges[c], edges[c + 1], n))
            from_enrollment = rng.random(n) < 0.7
            row = rng.integers(0, len(e), n)
            user_row = rng.integers(0, len(users), n)
            user = np.where(
                from_enrollment, e["user"].to_numpy()[row], users["id"].to_numpy()[user_row]
            )
            tenant = np.where(
                from_enrollment, e["tenant"].to_numpy()[row], users["tenant"].to_numpy()[user_row]
            )
            kind = np.where(
                from_enrollment,
                ACTIVITY_TYPES[rng.integers(0, 3, n)],
                ACTIVITY_TYPES[rng.integers(3, len(ACTIVITY_TYPES), n)],
            )
            ids = np.arange(next_id, next_id + n)
            next_id += n
            yield pd.DataFrame(
                {
                    "id": enc.integers(ids),
                    "tenant_id": enc.integers(tenant),
                    "user_id": enc.integers(user),
                    "course_id": enc.integers(e["course"].to_numpy()[row], ~from_enrollment),
                    "activity_type": enc.strings(kind),
                    "occurred_at": enc.timestamps(at),
                }
            )
