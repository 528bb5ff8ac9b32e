"""Process-wide caches of catalogue data that the repository owns, each checked against
the database: the use cases never see them (they ask the repository)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from referral.models import Offer
from referral.ranking import Candidates, Menu

STALE_OFFER_ATTEMPTS = 3


class CachedMenu:
    """A menu card at one version, and the offers of it in each area and set of categories
    asked: what PostgreSQL's area filter answered at that version, each until the first of
    their recognitions ends."""

    MAX_AREAS = 4096

    def __init__(self, version: int, menu: Menu) -> None:
        self.version = version
        self.menu = menu
        self._areas: dict[tuple[Any, ...], Candidates] = {}
        self._lock = threading.Lock()

    def candidates(
        self, key: tuple[Any, ...], now: dt.datetime, load: Callable[[], Candidates]
    ) -> Candidates:
        found = self._areas.get(key)
        if found is not None and (found.valid_until is None or now < found.valid_until):
            return found
        found = load()
        with self._lock:
            if len(self._areas) >= self.MAX_AREAS:
                self._areas.clear()
            self._areas[key] = found
        return found


class MenuCache:
    """The menu card of each care group ready for ranking (ranking.Menu) at its version
    (offer_menu_versions, bumped by any change of the care group's offers), with its
    offers per area (:class:`CachedMenu`). Whole answers are not cached: the ranking is
    per profile."""

    def __init__(self) -> None:
        self._menus: dict[str, CachedMenu] = {}
        self._lock = threading.Lock()

    def get(self, care_group: str, version: int, load: Callable[[], Menu]) -> CachedMenu:
        cached = self._menus.get(care_group)
        if cached is not None and cached.version == version:
            return cached
        cached = CachedMenu(version, load())
        with self._lock:
            self._menus[care_group] = cached
        return cached


class OfferCache:
    """Offers' terms as CreateReferral last read them, each at its version. The insert of a
    referral checks the offer's version in the same statement; if the offer changed
    meanwhile (any write bumps its version), nothing is written, the entry is dropped and
    the offer read again. The offers returned are shared and detached: do not change them.
    The first miss in a care group loads the terms of all its listed offers at once."""

    MAX_ENTRIES = 100_000

    def __init__(self) -> None:
        self._offers: dict[str, Offer] = {}
        self._care_groups: set[str] = set()
        self._lock = threading.Lock()

    def get(self, offer_id: str) -> Offer | None:
        return self._offers.get(offer_id)

    def load(
        self,
        offer_id: str,
        care_group: str,
        one: Callable[[], Offer | None],
        listed: Callable[[], list[Offer]],
    ) -> Offer | None:
        """After a miss: the care group's listed offers the first time, else the one offer."""
        if care_group and care_group not in self._care_groups:
            offers = listed()
            with self._lock:
                self._care_groups.add(care_group)
                if len(self._offers) + len(offers) >= self.MAX_ENTRIES:
                    self._offers.clear()
                self._offers.update((o.id, o) for o in offers[: self.MAX_ENTRIES])
            found = self._offers.get(offer_id)
            if found is not None:
                return found
        offer = one()
        if offer is not None:
            with self._lock:
                if len(self._offers) >= self.MAX_ENTRIES:
                    self._offers.clear()
                self._offers[offer_id] = offer
        return offer

    def forget(self, offer_id: str) -> None:
        self._offers.pop(offer_id, None)


@dataclass
class Caches:
    """One per process (see unit_of_work.units_of_work)."""

    menu: MenuCache = field(default_factory=MenuCache)
    offers: OfferCache = field(default_factory=OfferCache)
