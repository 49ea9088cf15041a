/// Carries a scoped call's result out of `withTaskExecutorPreference`, whose closure result is not `sending`:
/// the one carrier of every `withConnection` and `withBound` (`AsyncSocket`, `DatagramSocket`, and the TLS
/// socket of `AsyncSocketsTLS`).
///
/// `@unchecked Sendable`, proved: `value` is the body's `sending` result, so nothing else holds a reference into
/// its region; it only travels from the closure to the code that called `withTaskExecutorPreference`, in the
/// same task, and that code returns it at once as a `sending` result. Nothing else creates one.
package struct ScopedResult<T>: @unchecked Sendable {
    /// The body's result.
    package var value: T

    /// Wraps the body's result.
    package init(value: T) {
        self.value = value
    }
}
