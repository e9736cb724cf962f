websocket_urlpatterns: list = []  # sweeps and runs stream through core's generic /ws/jobs/<kind>/<pk>/
