"""Process-wide caches of catalogue data that the repository owns, each checked against
the database: the use cases never see them (they ask the repository)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from referral.models import Offer
from referral.ranking import MenuEntry

STALE_OFFER_ATTEMPTS = 3


class MenuCache:
    """The listed offers of each care group with what ranking needs precomputed, reloaded
    only when the care group's offers changed: every write bumps the offer's version, so
    ``(count, sum(version))`` over the care group's offers is a cheap stamp."""

    def __init__(self) -> None:
        self._menus: dict[str, tuple[tuple[int, int], Sequence[MenuEntry]]] = {}
        self._lock = threading.Lock()

    def get(
        self,
        care_group: str,
        stamp: tuple[int, int],
        load: Callable[[], Sequence[MenuEntry]],
    ) -> Sequence[MenuEntry]:
        cached = self._menus.get(care_group)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        entries = load()
        with self._lock:
            self._menus[care_group] = (stamp, entries)
        return entries


class OfferCache:
    """Offers' terms as CreateReferral last read them, each at its version. The insert of a
    referral checks the offer's version in the same statement; if the offer changed
    meanwhile (any write bumps its version), nothing is written, the entry is dropped and
    the offer read again. The offers returned are shared and detached: do not change them."""

    MAX_ENTRIES = 20_000

    def __init__(self) -> None:
        self._offers: dict[str, Offer] = {}

    def get(self, offer_id: str, load: Callable[[], Offer | None]) -> Offer | None:
        offer = self._offers.get(offer_id)
        if offer is None:
            offer = load()
            if offer is not None:
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
