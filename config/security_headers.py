"""The Content-Security-Policy and Permissions-Policy every page is served with (imported by
config.settings)."""

from csp.constants import NONE, SELF

# Content-Security-Policy (django-csp; README "Security"): scripts, styles, fonts, images and
# connections from the platform's own origin only; no inline scripts or handlers, no eval (charts
# run Vega's expression interpreter). core.headers adds ws(s)://<this host> to connect-src.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        # Vega and vega-embed inject no <style> (defaultStyle off, their CSS is served as a file),
        # but position the tooltip and size the chart through element.style (CSSOM), which CSP allows.
        "style-src": [SELF],
        # Chart export (PNG/SVG) and Pico's icons are data: URLs.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Browser features no page of the platform uses: off for every page (and anything injected into one).
PERMISSIONS_POLICY_DISABLED = [
    "accelerometer", "ambient-light-sensor", "autoplay", "bluetooth", "camera", "display-capture",
    "geolocation", "gyroscope", "hid", "idle-detection", "magnetometer", "microphone", "midi", "payment",
    "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
]
