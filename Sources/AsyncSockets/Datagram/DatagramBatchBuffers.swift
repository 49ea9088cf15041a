#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CLibeventShim

/// The memory of one socket's batched receives (``DatagramSocket/datagrams``): `count` slots of `slotSize`
/// bytes, one `sockaddr_storage` per slot for the sender, and the per-slot results the C call fills in.
///
/// Owned by its ``DatagramSocket`` (actor-isolated, used only while the read lock is held) and freed with it.
/// Pages of a slot that no datagram reaches are never touched, so a large `slotSize` costs address space, not
/// memory.
final class DatagramBatchBuffers {
    let slotSize: Int
    let count: Int
    let slots: UnsafeMutableRawBufferPointer
    let addresses: UnsafeMutableRawBufferPointer
    let addressLengths: UnsafeMutableBufferPointer<UInt32>
    let lengths: UnsafeMutableBufferPointer<Int>
    let truncated: UnsafeMutableBufferPointer<Int32>
    static let addressSize = Int(as_sockaddr_storage_size())

    init(slotSize: Int, count: Int) {
        self.slotSize = slotSize
        self.count = count
        slots = .allocate(byteCount: max(1, slotSize * count), alignment: 16)
        addresses = .allocate(byteCount: Self.addressSize * count, alignment: 16)
        addressLengths = .allocate(capacity: count)
        lengths = .allocate(capacity: count)
        truncated = .allocate(capacity: count)
    }

    deinit {
        slots.deallocate()
        addresses.deallocate()
        addressLengths.deallocate()
        lengths.deallocate()
        truncated.deallocate()
    }

    /// The sender of slot `index`, as the kernel reported it.
    func sender(_ index: Int) -> SocketAddress? {
        SocketAddress(received: UnsafeRawPointer(addresses.baseAddress! + index * Self.addressSize),
                      length: addressLengths[index])
    }
}

/// The memory of one socket's batched sends (``DatagramSocket/send(batch:)``): a `sockaddr_storage` per
/// datagram and the pointer and length arrays `sendmmsg` takes. Owned by its socket, used under the write lock.
final class DatagramAddressBuffers {
    static let count = Int(AS_DATAGRAM_BATCH_MAX)
    let addresses: UnsafeMutableRawBufferPointer
    let addressPointers: UnsafeMutableBufferPointer<UnsafeRawPointer?>
    let addressLengths: UnsafeMutableBufferPointer<UInt32>
    let bytes: UnsafeMutableBufferPointer<UnsafeRawPointer?>
    let lengths: UnsafeMutableBufferPointer<UInt>

    init() {
        let count = Self.count
        addresses = .allocate(byteCount: DatagramBatchBuffers.addressSize * count, alignment: 16)
        addressPointers = .allocate(capacity: count)
        addressLengths = .allocate(capacity: count)
        bytes = .allocate(capacity: count)
        lengths = .allocate(capacity: count)
    }

    deinit {
        addresses.deallocate()
        addressPointers.deallocate()
        addressLengths.deallocate()
        bytes.deallocate()
        lengths.deallocate()
    }

    /// Copies `address` into slot `index` (or records "no address" for `nil`: the connected peer).
    func store(_ address: SocketAddress?, at index: Int) {
        guard let address else {
            addressPointers[index] = nil
            addressLengths[index] = 0
            return
        }
        let slot = addresses.baseAddress! + index * DatagramBatchBuffers.addressSize
        address.withSockAddr { pointer, length in
            slot.copyMemory(from: pointer, byteCount: Int(length))
            addressLengths[index] = UInt32(length)
        }
        addressPointers[index] = UnsafeRawPointer(slot)
    }
}

extension SocketAddress {
    /// The sender address `recvmsg` reported: `nil` when there is none (length 0, or an unnamed or abstract
    /// unix socket), or of a family this library does not know.
    init?(received storage: UnsafeRawPointer, length: UInt32) {
        guard length >= UInt32(MemoryLayout<UInt16>.size) else { return nil }
        self.init(sockaddr: storage, length: socklen_t(length))
        if case .unix(let path) = self.storage, path.isEmpty { return nil }
    }
}
