"""Process-wide caches of catalogue data, each checked against the database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from referral.models import Offer
from referral.ranking import MenuEntry
from referral.unit_of_work import UnitOfWork


class MenuCache:
    """The listed offers of each care group, reloaded only when the care group's offers
    changed: every write bumps the offer's version, so ``(count, sum(version))`` over the
    care group's offers is a cheap stamp (one aggregate query per FindOffers)."""

    def __init__(self) -> None:
        self._menus: dict[str, tuple[tuple[int, int], Sequence[MenuEntry]]] = {}
        self._lock = threading.Lock()

    def listed(self, uow: UnitOfWork, care_group: str) -> Sequence[MenuEntry]:
        stamp = uow.repo.offers_stamp(care_group)
        cached = self._menus.get(care_group)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        entries = [MenuEntry.of(o) for o in uow.repo.listed_offers(care_group, [])]
        with self._lock:
            self._menus[care_group] = (stamp, entries)
        return entries


STALE_OFFER_ATTEMPTS = 3


class OfferCache:
    """Offers' terms as CreateReferral last read them, each at its version. The insert of a referral
    checks the offer's version in the same statement; if the offer changed meanwhile (any
    write bumps its version), nothing is written, the entry is dropped and the offer read
    again. The offers returned are shared and detached: do not change them."""

    MAX_ENTRIES = 20_000

    def __init__(self) -> None:
        self._offers: dict[str, Offer] = {}

    def get(self, uows: Callable[[], UnitOfWork], offer_id: str) -> Offer | None:
        """The cached offer, or the offer read in a unit of work of its own (so that the
        caller's stays without a session, and its one write without a transaction)."""
        offer = self._offers.get(offer_id)
        if offer is None:
            with uows() as uow:
                offer = uow.repo.offer_terms(offer_id)
            if offer is not None:
                if len(self._offers) >= self.MAX_ENTRIES:
                    self._offers.clear()
                self._offers[offer_id] = offer
        return offer

    def forget(self, offer_id: str) -> None:
        self._offers.pop(offer_id, None)
