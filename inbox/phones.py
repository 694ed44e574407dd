"""Contacts' phones: one number, however it is written, is one E.164 string (README Triage).

`phonenumbers` (Google's libphonenumber) reads a number in international form (`+55 11 …`,
`0055…`) or national form, the latter in CONTACT_PHONE_REGION's plan, and tells a real number
from digits that only look like one.
"""

import phonenumbers
from django.conf import settings


class InvalidPhone(ValueError):
    pass


def phone_normalise(text: str) -> str:
    """`text` as E.164 (`+5511912345678`), or InvalidPhone saying why it is not a phone."""
    try:
        number = phonenumbers.parse(text, settings.CONTACT_PHONE_REGION)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone(f"{text!r} is not a phone number ({error._msg})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_display(e164: str) -> str:
    """An E.164 phone as people write it internationally (`+55 11 91234-5678`)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
