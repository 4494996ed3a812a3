// The shape every host planner returns (the bridge and its rules, a pod's links, the fast path's
// VXLAN device): what is wrong, each with the actions that put it right, and what is wrong but
// not ours to fix. The planners are pure; their shells apply the actions, log the problems and
// report the rest.

/** One thing found wrong and the actions (of the planner's own kind) that fix it. */
export interface Fix<A> {
  /** What was wrong, for the log and for CNI CHECK ("vethwepl1234567 was missing"). */
  readonly problem: string;
  readonly actions: readonly A[];
}

export interface RepairPlan<A> {
  readonly fixes: readonly Fix<A>[];
  /** What is wrong and not ours to fix (another kind of device under our name, say). */
  readonly unfixable: readonly string[];
}
