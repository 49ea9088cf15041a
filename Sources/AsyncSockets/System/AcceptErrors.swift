internal import CLibeventShim

/// What a failed `accept(2)` asks of the accepting loop. Which `errno` values mean what differs between
/// platforms (Linux passes on the new connection's network errors), so the list lives in the C shim
/// (`as_accept_error_action`).
enum AcceptFailure {
    /// The failure of one connection (`ECONNABORTED`, `EPROTO`, `EPERM`, on Linux `ENETDOWN`, `EHOSTUNREACH`, …):
    /// accept the next one at once.
    case skip
    /// Out of descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): wait, then try again; the
    /// connection waits in the kernel's backlog meanwhile.
    case backOff
    /// A real error of the listening socket: report it.
    case fail
}

extension Errno.Code {
    /// How an accept loop treats this failure of `accept(2)`.
    var acceptFailure: AcceptFailure {
        switch Int(as_accept_error_action(rawValue)) {
        case AS_ACCEPT_SKIP: .skip
        case AS_ACCEPT_BACK_OFF: .backOff
        default: .fail
        }
    }
}
