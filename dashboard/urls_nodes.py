urlpatterns: list = []  # node list and node pages
