import { snapshotPolicy } from "../../src/state/side-state.js";

/**
 * The engine's scenario table (every row cut off at every store write and resumed) and its
 * randomized test once more, with small states kept the way a big one is: the journal lives across
 * runs and is replayed at open, and a snapshot is written only once the journal has grown as large
 * as the snapshot. (By default a state under 1 MB is snapshotted at every save that recorded something.)
 */
snapshotPolicy.floor = 0;
snapshotPolicy.ratio = 1;

await import("../engine/scenarios.test.js");
await import("../engine/random.test.js");
