"""Settlement-card changes: the clear number is checked, sealed, and never kept."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from settleguard.agent.card_change import (
    CardChangeRequest,
    build_card_change,
    intake_warnings,
    luhn_valid,
    mask_card,
    normalize_account_number,
    normalize_card_number,
)
from settleguard.agent.errors import UsageError
from settleguard.protocol.sealed import (
    SealedError,
    card_change_context,
    generate_keypair,
    open_sealed,
)

# Luhn-valid test numbers (UnionPay-style 16 and 19 digits); not real accounts.
CARD_16 = "6222021234567894"
CARD_19 = "6217000010012345677"

REQUEST = CardChangeRequest(
    merchant_id="M0001", holder_name="张三", bank="ICBC", requested_at="2026-11-26T10:00:00Z"
)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("79927398713", True), ("79927398710", False), (CARD_16, True), (CARD_19, True), ("0", True)],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def test_normalize_accepts_spaces_and_dashes() -> None:
    assert normalize_card_number("6222 0212-3456 7894") == CARD_16


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("6222 02x2 3456 7894", "only digits"),
        ("62220212345", "12 to 19 digits"),
        ("6222021234567895", "Luhn"),
        ("６２２２０２１２３４５６７８９４", "only digits"),  # full-width digits are not ASCII
    ],
)
def test_bad_numbers_are_refused_without_echoing_them(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        normalize_card_number(text)
    assert fragment in info.value.message
    assert "3456" not in info.value.message


def test_mask_keeps_last_four_only() -> None:
    assert mask_card(CARD_16) == "************7894"
    assert mask_card(CARD_19).endswith("5677") and set(mask_card(CARD_19)[:-4]) == {"*"}


def test_record_carries_only_masked_number_and_a_token_the_collector_can_open() -> None:
    private, public = generate_keypair()
    change = build_card_change(REQUEST, "6222 0212 3456 7894", public, change_id="c1")
    body_text = json.dumps(change.to_body(), ensure_ascii=False)
    assert CARD_16 not in body_text
    assert change.new_account_masked == "************7894"
    assert change.review_status == "requested"
    opened = open_sealed(private, change.new_account_sealed, context=card_change_context("c1"))
    assert opened == CARD_16.encode()


def test_token_does_not_open_under_another_change_id() -> None:
    private, public = generate_keypair()
    change = build_card_change(REQUEST, CARD_16, public, change_id="c1")
    with pytest.raises(SealedError):
        open_sealed(private, change.new_account_sealed, context=card_change_context("c2"))


@pytest.mark.parametrize("field", ["holder_name", "bank"])
def test_holder_and_bank_are_required(field: str) -> None:
    _, public = generate_keypair()
    values = {
        "merchant_id": "M0001",
        "holder_name": "张三",
        "bank": "ICBC",
        "requested_at": "2026-11-26T10:00:00Z",
    }
    values[field] = " "
    request = CardChangeRequest(**values)
    with pytest.raises(UsageError, match="required"):
        build_card_change(request, CARD_16, public)


def test_heartbeat_error_text_is_made_safe_for_a_record(tmp_path: Path) -> None:
    """An error message with a newline or a card number must not break or leak a heartbeat."""
    from settleguard.agent.outbox import Outbox
    from settleguard.agent.recorder import heartbeat_record

    with Outbox(tmp_path / "outbox.db") as outbox:
        heartbeat = heartbeat_record(
            outbox, link_state="offline", terminal_id=None, last_error=f"port\ngone {CARD_16}"
        )
    assert heartbeat.last_error is not None
    assert "\n" not in heartbeat.last_error and CARD_16 not in heartbeat.last_error


# A 22-digit corporate account number (对公账户) has no check digit; this one fails Luhn.
CORPORATE_22 = "1100 0123 4567 8901 2345 68"


def test_corporate_account_is_accepted_without_luhn_and_recorded_as_such() -> None:
    private, public = generate_keypair()
    assert not luhn_valid(CORPORATE_22.replace(" ", ""))
    request = dataclasses.replace(
        REQUEST, holder_name="面馆餐饮有限公司", account_kind="corporate", account_class="II"
    )
    change = build_card_change(request, CORPORATE_22, public, change_id="c9")
    assert change.account_kind == "corporate"
    assert change.account_class is None  # Type I/II is for personal accounts
    assert change.holder_declared_personal is False
    assert change.new_account_masked == "*" * 18 + "4568"
    opened = open_sealed(private, change.new_account_sealed, context=card_change_context("c9"))
    assert opened == CORPORATE_22.replace(" ", "").encode()
    # the same number as a personal card is refused: too long, and no Luhn
    with pytest.raises(UsageError, match="12 to 19 digits"):
        build_card_change(REQUEST, CORPORATE_22, public)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("1234567", "8 to 32 digits"), ("1" * 33, "8 to 32 digits"), ("1100-01x3", "only digits")],
)
def test_bad_corporate_numbers_are_refused_without_echo(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        normalize_account_number(text, "corporate")
    assert fragment in info.value.message
    assert text not in info.value.message


def test_personal_card_records_kind_and_type() -> None:
    _, public = generate_keypair()
    request = dataclasses.replace(REQUEST, account_class="II")
    change = build_card_change(request, CARD_16, public)
    assert (change.account_kind, change.account_class, change.holder_declared_personal) == (
        "card",
        "II",
        True,
    )


@pytest.mark.parametrize(
    ("holder", "registered", "warned"),
    [
        ("张三", "张三", False),
        ("张 三", "张三", False),  # spaces do not matter
        ("面馆（北京）有限公司", "面馆(北京)有限公司", False),  # bracket width does not matter
        ("李四", "张三", True),  # a relative's card: the bank returns it (户名不符)
        ("张三", None, False),  # nothing to compare with
    ],
)
def test_warns_when_holder_is_not_the_registered_name(
    holder: str, registered: str | None, warned: bool
) -> None:
    request = dataclasses.replace(REQUEST, holder_name=holder, registered_name=registered)
    found = [w for w in intake_warnings(request) if "户名不符" in w]
    assert bool(found) is warned


def test_type_ii_account_warns_about_limits() -> None:
    request = dataclasses.replace(REQUEST, account_class="II")
    assert any("二类户" in w for w in intake_warnings(request))
