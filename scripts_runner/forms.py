from django import forms

from scripts_runner import conf


class UploadForm(forms.Form):
    file = forms.FileField(label="Python file (.py)", allow_empty_file=True)
    name = forms.CharField(label="Name (optional)", max_length=200, required=False,
                           help_text="Defaults to the file's name.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = conf.MAX_SCRIPT_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The script is {upload.size:,} bytes; the limit is {limit:,} bytes.")
        return upload


class CodeForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    code = forms.CharField(label="Code", widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false",
                                                                      "class": "code-input"}), strip=False)


class RunForm(forms.Form):
    args = forms.CharField(label="Arguments", required=False, max_length=20000,
                           help_text="Split like a shell: a 'two words' three")
    env = forms.CharField(label="Environment variables", required=False, max_length=50000,
                          widget=forms.Textarea(attrs={"rows": 3, "placeholder": "NAME=value, one per line"}))
    network = forms.BooleanField(label="Network", required=False,
                                 help_text="Give this run its own network behind NAT: the internet, never the host "
                                           "or private and link-local addresses")
