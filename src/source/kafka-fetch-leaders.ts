// Owns which broker leads each owned partition on the fetch path, read from the Kafka client's
// metadata, and the Fetch request of one leader node: the partitions it leads that have a position,
// never a partition of another leader (the client would send a mixed request to one node and retry
// it for its whole budget: review 2026-12-07k).
import type { FetchTopic } from './kafka-fetch-response.ts';
import type { PartitionRef } from './types.ts';

export interface TopicMetadata {
  readonly id: string;
  readonly partitions: ReadonlyArray<{ readonly leader: number; readonly leaderEpoch: number } | undefined>;
}
export interface Metadata {
  readonly topics: ReadonlyMap<string, TopicMetadata>;
}
interface Leader {
  readonly node: number;
  readonly epoch: number;
  readonly topicId: string;
}

export class FetchLeaders {
  readonly #leaders = new Map<string, Leader>();
  readonly #topicOf = new Map<string, string>();

  /** The topic name of a topic id seen in the metadata. */
  topicOf(topicId: string): string | undefined {
    return this.#topicOf.get(topicId);
  }

  /**
   * The leader of every owned partition from the metadata; true when one has none known (the
   * caller asks again soon). `moved` is told of each partition whose leader is new or changed.
   */
  read(metadata: Metadata, owned: ReadonlyMap<string, PartitionRef>, moved: (node: number) => void): boolean {
    let leaderless = false;
    for (const [key, ref] of owned) {
      const topic = metadata.topics.get(ref.topic);
      const partition = topic?.partitions[ref.partition];
      if (topic === undefined || partition === undefined || partition.leader < 0) {
        this.#leaders.delete(key);
        leaderless = true;
        continue;
      }
      const before = this.#leaders.get(key);
      if (before !== undefined && before.node === partition.leader && before.epoch === partition.leaderEpoch) continue;
      this.#topicOf.set(topic.id, ref.topic);
      this.#leaders.set(key, { node: partition.leader, epoch: partition.leaderEpoch, topicId: topic.id });
      moved(partition.leader);
    }
    return leaderless;
  }

  /** The nodes leading a partition that has a position. */
  nodesToRead(positions: ReadonlyMap<string, bigint>): Set<number> {
    const nodes = new Set<number>();
    for (const [key, leader] of this.#leaders) if (positions.has(key)) nodes.add(leader.node);
    return nodes;
  }

  /** The Fetch request for one node: the owned partitions it leads with a position; undefined when none. */
  requestFor(node: number, owned: ReadonlyMap<string, PartitionRef>, positions: ReadonlyMap<string, bigint>, partitionMaxBytes: number): { topics: FetchTopic[]; refs: PartitionRef[] } | undefined {
    let topics: Map<string, FetchTopic> | undefined;
    const refs: PartitionRef[] = [];
    for (const [key, leader] of this.#leaders) {
      const fetchOffset = positions.get(key);
      const ref = owned.get(key);
      if (leader.node !== node || fetchOffset === undefined || ref === undefined) continue;
      topics ??= new Map();
      let topic = topics.get(leader.topicId);
      if (topic === undefined) topics.set(leader.topicId, (topic = { topicId: leader.topicId, partitions: [] }));
      topic.partitions.push({ partition: ref.partition, fetchOffset, partitionMaxBytes, currentLeaderEpoch: leader.epoch, lastFetchedEpoch: leader.epoch });
      refs.push(ref);
    }
    return topics === undefined ? undefined : { topics: [...topics.values()], refs };
  }

  forget(key: string): void {
    this.#leaders.delete(key);
  }

  clear(): void {
    this.#leaders.clear();
  }
}
