"""Serializer fields that take JSON values as they are, so the API schema's types are the server's.

DRF's CharField also takes numbers (and turns them into text) and its BooleanField takes 0, 1 and
words. In a JSON body these read their JSON type only; in form input, where every value is text,
text is text and a boolean is the word true or false.
"""

from rest_framework import serializers
from rest_framework.utils import html


def _is_form_input(field) -> bool:
    root = field.root
    return html.is_html_input(getattr(root, "initial_data", None))


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Give text (a JSON string)."}

    def to_internal_value(self, data):
        if not isinstance(data, str) and not _is_form_input(self):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false: a JSON boolean, or in a form the words `true` and `false` (not 0, 1, yes, on)."""

    default_error_messages = {"invalid": "Give true or false."}
    FORM_WORDS = {"true": True, "false": False}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and _is_form_input(self) and data.lower() in self.FORM_WORDS:
            return self.FORM_WORDS[data.lower()]
        self.fail("invalid")
