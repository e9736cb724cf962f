from django import forms


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(max_length=254)
    password = forms.CharField(widget=forms.PasswordInput(render_value=False), strip=False, max_length=4096)
    is_admin = forms.BooleanField(required=False, label="Administrator")


class SetPasswordForm(forms.Form):
    new_password = forms.CharField(
        widget=forms.PasswordInput(render_value=False), strip=False, max_length=4096, label="New password"
    )
