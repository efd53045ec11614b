import Loopback

typealias TestThread = JoinableThread
