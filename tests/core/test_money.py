from decimal import Decimal

import pytest

from core.money import format_euros, round_money, to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.005", "0.01"),  # half up, not banker's rounding
        ("0.015", "0.02"),
        ("0.025", "0.03"),
        ("2.675", "2.68"),  # 2.675 as a float is 2.67499999…: strings and Decimals are exact
        ("0.004", "0.00"),
        ("-0.005", "-0.01"),  # away from zero for negatives (credit notes)
        ("-2.675", "-2.68"),
        ("-0.004", "0.00"),
        ("12", "12.00"),
        ("1234.5", "1234.50"),
        (Decimal("63.3333333"), "63.33"),
        (7, "7.00"),
    ],
)
def test_round_money_half_up_two_places(value, expected):
    result = round_money(value)
    assert isinstance(result, Decimal)
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -2


def test_round_money_of_a_product_rounds_once():
    # 31 days at 63.456 €: the line is rounded, not each day.
    assert round_money(Decimal("63.456") * 31) == Decimal("1967.14")


def test_floats_go_through_their_shortest_repr_never_binary():
    # openpyxl gives floats: 2.675 must mean 2.675, not 2.67499999999999982236431605997495353221893310546875.
    assert to_decimal(2.675) == Decimal("2.675")
    assert round_money(2.675) == Decimal("2.68")
    assert round_money(0.1 + 0.2) == Decimal("0.30")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12,50", "12.50"), (" 1 234,56 ", "1234.56"), ("1\u00a0234,5", "1234.5"), ("-3", "-3")],
)
def test_to_decimal_accepts_french_input(text, expected):
    assert to_decimal(text) == Decimal(expected)


@pytest.mark.parametrize("bad", ["", "abc", "1,2,3", None, object()])
def test_to_decimal_rejects_garbage(bad):
    with pytest.raises(ValueError, match="montant invalide"):
        to_decimal(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234.5", "1\u202f234,50\u00a0€"),
        ("0", "0,00\u00a0€"),
        ("-1234567.455", "-1\u202f234\u202f567,46\u00a0€"),
        ("999.999", "1\u202f000,00\u00a0€"),
        ("-0.004", "0,00\u00a0€"),
    ],
)
def test_format_euros_french(value, expected):
    assert format_euros(value) == expected
