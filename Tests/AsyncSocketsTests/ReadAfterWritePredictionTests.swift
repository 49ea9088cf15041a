import Testing
@testable import AsyncSockets

// `ReadAfterWritePrediction` on its own: which reads right after a write try `recv` first, given what the
// earlier ones found. The numbers are the policy's (credit +2 per answer found, -1 per answer not there;
// probes after 2, 4, ... 64 waits); the socket tests in `WithConnectionTests` check it in place.
@Suite struct ReadAfterWritePredictionTests {
    init() { GroupFixtures.warmUp() }

    /// Runs `reads` reads; `answerThere(i)` says whether read `i` would find its answer. Returns how many tried.
    private static func tries(_ reads: Int, _ answerThere: (Int) -> Bool) -> Int {
        var prediction = ReadAfterWritePrediction()
        var tried = 0
        for i in 0..<reads where prediction.shouldTry() {
            tried += 1
            prediction.record(found: answerThere(i))
        }
        return tried
    }

    @Test func anAnswerAlwaysThereIsAlwaysTried() {
        #expect(Self.tries(1000) { _ in true } == 1000)
    }

    /// A peer on another core: the answer is never there yet. Probes back off to one in 65 reads.
    @Test func anAnswerNeverThereIsProbedRarely() {
        let tried = Self.tries(1000) { _ in false }
        // 1 + 2 + 4 + ... + 64 reads between the first probes, then one in 65: 19 probes in 1000 reads.
        #expect(tried >= 10 && tried <= 25, "\(tried) of 1000 reads tried")
    }

    /// On the same core the peer often, not always, runs before `send` returns: two times in three is
    /// well worth trying every time.
    @Test func anAnswerUsuallyThereKeepsBeingTried() {
        #expect(Self.tries(999) { $0 % 3 != 2 } == 999)
    }

    /// Below one in three, trying costs more than it saves: most reads wait at once.
    @Test func anAnswerRarelyThereIsMostlyNotTried() {
        let tried = Self.tries(1000) { $0 % 5 == 0 }
        #expect(tried < 500, "\(tried) of 1000 reads tried")
    }

    /// After a long run of misses, the first probe that finds its answer brings trying back at once.
    @Test func aFoundAnswerEndsTheBackOff() {
        var prediction = ReadAfterWritePrediction()
        for _ in 0..<500 where prediction.shouldTry() { prediction.record(found: false) }
        var waited = 0
        while !prediction.shouldTry() { waited += 1 }
        #expect(waited <= Int(ReadAfterWritePrediction.maxProbeInterval))
        prediction.record(found: true)
        var tried = 0
        for _ in 0..<10 where prediction.shouldTry() {
            tried += 1
            prediction.record(found: true)
        }
        #expect(tried == 10)
    }

    /// The decision for a read that finds its socket drained by a short read: only in the job that drained it
    /// (no suspension since), with nothing else queued and the task preferring the loop, does the prediction
    /// get asked; the remembered job is cleared either way, so each drain allows one such read at most.
    @Test func afterADrainOnlyTheSameJobAsks() async {
        let loop = GroupFixtures.quiet.loops[0]
        let answers = await loop.run {
            var prediction = ReadAfterWritePrediction()
            var drained = loop.jobSerial
            let sameJob = prediction.shouldTryAfterDrain(inJob: &drained, on: loop)  // a first probe
            let cleared = drained == 0
            let again = prediction.shouldTryAfterDrain(inJob: &drained, on: loop)
            drained = loop.jobSerial &+ 1                                           // another job's drain
            let otherJob = prediction.shouldTryAfterDrain(inJob: &drained, on: loop)
            return [sameJob, cleared, !again, !otherJob, drained == 0]
        }
        #expect(answers == [true, true, true, true, true])
    }
}
