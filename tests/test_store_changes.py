"""The store's change mark (store.changes): it moves with what a prompt listing shows, and only then."""

from __future__ import annotations

from promstack import Client
from store.changes import change_mark


def test_the_mark_moves_with_saves_label_moves_archives_and_restores(isolated_store):
    with Client(isolated_store) as client:
        client.check_mode = "none"
        marks = [change_mark(client.store.db)]

        def moved() -> bool:
            marks.append(change_mark(client.store.db))
            return marks[-1] != marks[-2]

        client.create_prompt("support/refund", "Refunds: {{ q }}")
        assert moved()
        assert not moved()  # nothing happened: the same mark
        client.save("support/refund", "Refunds, kindly: {{ q }}")
        assert moved()
        client.save("support/refund", "Refunds, kindly: {{ q }}")  # the same content saves nothing
        assert not moved()
        client.set_label("support/refund", "beta", 1)
        assert moved()
        client.get_prompt("support/refund", label="beta")  # a read changes nothing
        assert not moved()
        client.delete_prompt("support/refund")
        assert moved()
        client.restore_prompt("support/refund")
        assert moved()
        assert marks[-1] == marks[-3]  # restored: the listing is what it was before the archive
