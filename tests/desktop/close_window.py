#!/usr/bin/python3
"""Ask X windows to close the way a window manager's close button does: send
each a WM_DELETE_WINDOW client message (ICCCM). Xvfb runs no window manager,
and `xdotool windowclose` destroys the window behind the toolkit's back
instead of asking it. Uses only libX11 through ctypes.

Usage: close_window.py WINDOW_ID...   (decimal or 0x hex, e.g. from
`xdotool search --name`), with DISPLAY set."""
import ctypes
import sys

x11 = ctypes.CDLL("libX11.so.6")
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XInternAtom.restype = ctypes.c_ulong
x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x11.XFlush.argtypes = [ctypes.c_void_p]
x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

CLIENT_MESSAGE = 33


class XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("l", ctypes.c_long * 5),
    ]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", XClientMessageEvent), ("pad", ctypes.c_long * 24)]


x11.XSendEvent.argtypes = [
    ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(XEvent)
]

display = x11.XOpenDisplay(None)
if not display:
    sys.exit("cannot open the X display (is DISPLAY set?)")
protocols = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
delete = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
for arg in sys.argv[1:]:
    ev = XEvent()
    ev.xclient.type = CLIENT_MESSAGE
    ev.xclient.window = int(arg, 0)
    ev.xclient.message_type = protocols
    ev.xclient.format = 32
    ev.xclient.l[0] = delete
    ev.xclient.l[1] = 0  # CurrentTime
    if not x11.XSendEvent(display, int(arg, 0), 0, 0, ctypes.byref(ev)):
        sys.exit(f"XSendEvent failed for window {arg}")
x11.XFlush(display)
x11.XCloseDisplay(display)
