"""Every HTTP route, each with a name; links are built from these names."""

from pathlib import Path

from wheezy.routing import url
from xstatic.pkg import jquery

from views.accounts import InvitePage, SigninPage, SignoutPage
from views.api import RoomMessagesApi, RoomsApi
from views.pages import (
    ChatPage,
    HealthPage,
    MetricsPage,
    ReadyPage,
    WebSocketOnlyPage,
    static_files,
)
from views.transcripts import RoomListPage, TranscriptDownload, TranscriptPage
from views.uploads import FilePage, UploadPage

STATIC = Path(__file__).resolve().parent.parent / "static"

all_urls = [
    url("", ChatPage, name="chat"),
    url("healthz", HealthPage, name="health"),
    url("readyz", ReadyPage, name="ready"),
    url("metrics", MetricsPage, name="metrics"),
    url("api/rooms", RoomsApi, name="api_rooms"),
    url("api/rooms/{room}/messages", RoomMessagesApi, name="api_room_messages"),
    url("ws", WebSocketOnlyPage, name="ws"),
    url("rooms", RoomListPage, name="rooms"),
    url("rooms/{room}", TranscriptPage, name="transcript"),
    url(
        "rooms/{room}/transcript.{format:(jsonl|txt)}",
        TranscriptDownload,
        name="transcript_download",
    ),
    url("upload", UploadPage, name="upload"),
    url("files/{id}/{thumb:(thumb)}", FilePage, name="file_thumb"),
    url("files/{id}/{name}", FilePage, name="file"),
    url("invite/{token}", InvitePage, name="invite"),
    url("signin/{code}", SigninPage, name="signin"),
    url("signout", SignoutPage, name="signout"),
    url("static/{path:any}", static_files(STATIC), name="static"),
    url("vendor/jquery/{path:any}", static_files(jquery.BASE_DIR), name="jquery"),
]
