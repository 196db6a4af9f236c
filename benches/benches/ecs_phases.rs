//! How a request entity should move through the pipeline's stages in
//! bevy_ecs: the benchmark behind the layout in `docs/ARCHITECTURE.md`.
//!
//! Seven systems (ingest, five stages, respond) move `batch` requests per
//! tick, each touching a component the way the real stage does, with
//! components of the real sizes (a 1 KiB feature row, a 680-byte decision,
//! stage stamps). Only the bookkeeping differs:
//!
//! - `spawn+scan`: the layout before: an entity spawned per request, a
//!   `Phase` enum every system scans for, a despawn at the end;
//! - `sparse-markers`: pooled entities, one sparse-set marker component per
//!   phase, moved with `Commands` (remove one, insert the next);
//! - `sparse-markers-exclusive`: the same markers moved directly on the
//!   World by exclusive systems;
//! - `stage-queues`: pooled entities and a queue of entities per stage,
//!   each system reaching its own entities by `Query::get_mut` (what the
//!   pipeline does);
//! - `stage-queues-slot-rows`: the same queues, with the row, stamps and
//!   outcome in slot-indexed resources beside the entity instead of in its
//!   components (the data layout before).
//!
//! Run: `cargo bench -p cx-benches --bench ecs_phases`. Criterion reports
//! the time per tick; divide by the batch for the cost per request.

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{ScheduleLabel, SingleThreadedExecutor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::collections::VecDeque;
use std::time::Duration;

const POOL: usize = 1024;
const ROW: usize = 128;

#[derive(Component, Clone)]
struct Row {
    len: u16,
    columns: [u32; ROW],
    values: [f32; ROW],
}

#[derive(Component, Clone)]
struct Outcome([u64; 85]);

#[derive(Component, Clone, Default)]
struct Stamps([u64; 8]);

#[derive(Component, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Free,
    At(u8),
}

macro_rules! markers {
    ($($name:ident),*) => {
        $(#[derive(Component, Default)] #[component(storage = "SparseSet")] struct $name;)*
    };
}
markers!(M0, M1, M2, M3, M4, M5, MFree);

#[derive(Resource)]
struct Batch(usize);

#[derive(Resource, Default)]
struct Emitted(u64);

fn parts() -> (Row, Outcome, Stamps) {
    let row = Row {
        len: 0,
        columns: [0; ROW],
        values: [0.0; ROW],
    };
    (row, Outcome([0; 85]), Stamps::default())
}

/// What every stage does to its request: a few writes, like stamping a
/// time and writing a result.
fn work(row: &mut Row, stamps: &mut Stamps, stage: usize) {
    row.len = row.len.wrapping_add(1);
    row.columns[stage] = stage as u32;
    row.values[stage] += 1.0;
    stamps.0[stage] = stamps.0[stage].wrapping_add(1);
}

// ---- spawn, scan a phase enum, despawn

fn spawn_ingest(world: &mut World) {
    let n = world.resource::<Batch>().0;
    world.spawn_batch((0..n).map(|_| {
        let (r, o, s) = parts();
        (r, o, s, Phase::At(0))
    }));
}

fn scan_stage<const K: u8>(mut query: Query<(&mut Row, &mut Stamps, &mut Phase)>) {
    for (mut row, mut stamps, mut phase) in &mut query {
        if *phase != Phase::At(K) {
            continue;
        }
        work(&mut row, &mut stamps, K as usize);
        *phase = Phase::At(K + 1);
    }
}

fn despawn_respond(
    world: &mut World,
    query: &mut QueryState<(Entity, &Phase, &Outcome)>,
    mut done: Local<Vec<Entity>>,
) {
    let mut sum = 0;
    for (entity, phase, outcome) in query.iter(world) {
        if *phase == Phase::At(5) {
            sum += outcome.0[0] + 1;
            done.push(entity);
        }
    }
    world.resource_mut::<Emitted>().0 += sum;
    for entity in done.drain(..) {
        world.despawn(entity);
    }
}

fn spawn_scan(_world: &mut World, schedule: &mut Schedule) {
    schedule.add_systems(
        (
            spawn_ingest,
            scan_stage::<0>,
            scan_stage::<1>,
            scan_stage::<2>,
            scan_stage::<3>,
            scan_stage::<4>,
            despawn_respond,
        )
            .chain(),
    );
}

// ---- pooled entities, sparse-set markers moved by Commands

fn marker_ingest(mut commands: Commands, batch: Res<Batch>, free: Query<Entity, With<MFree>>) {
    for entity in free.iter().take(batch.0) {
        commands.entity(entity).remove::<MFree>().insert(M0);
    }
}

fn marker_stage<A: Component, B: Component + Default, const K: usize>(
    mut commands: Commands,
    mut query: Query<(Entity, &mut Row, &mut Stamps), With<A>>,
) {
    for (entity, mut row, mut stamps) in &mut query {
        work(&mut row, &mut stamps, K);
        commands.entity(entity).remove::<A>().insert(B::default());
    }
}

fn marker_respond(
    mut commands: Commands,
    query: Query<(Entity, &Outcome), With<M5>>,
    mut emitted: ResMut<Emitted>,
) {
    for (entity, outcome) in &query {
        emitted.0 += outcome.0[0] + 1;
        commands.entity(entity).remove::<M5>().insert(MFree);
    }
}

fn sparse_markers(world: &mut World, schedule: &mut Schedule) {
    world.spawn_batch((0..POOL).map(|_| {
        let (r, o, s) = parts();
        (r, o, s, MFree)
    }));
    schedule.add_systems(
        (
            marker_ingest,
            marker_stage::<M0, M1, 0>,
            marker_stage::<M1, M2, 1>,
            marker_stage::<M2, M3, 2>,
            marker_stage::<M3, M4, 3>,
            marker_stage::<M4, M5, 4>,
            marker_respond,
        )
            .chain(),
    );
}

// ---- pooled entities, sparse-set markers moved on the World

fn exclusive_ingest(
    world: &mut World,
    free: &mut QueryState<Entity, With<MFree>>,
    mut moving: Local<Vec<Entity>>,
) {
    let n = world.resource::<Batch>().0;
    moving.extend(free.iter(world).take(n));
    for entity in moving.drain(..) {
        world.entity_mut(entity).remove::<MFree>().insert(M0);
    }
}

fn exclusive_stage<A: Component, B: Component + Default, const K: usize>(
    world: &mut World,
    query: &mut QueryState<(Entity, &mut Row, &mut Stamps), With<A>>,
    mut moving: Local<Vec<Entity>>,
) {
    for (entity, mut row, mut stamps) in query.iter_mut(world) {
        work(&mut row, &mut stamps, K);
        moving.push(entity);
    }
    for entity in moving.drain(..) {
        world.entity_mut(entity).remove::<A>().insert(B::default());
    }
}

fn exclusive_respond(
    world: &mut World,
    query: &mut QueryState<(Entity, &Outcome), With<M5>>,
    mut moving: Local<Vec<Entity>>,
) {
    let mut sum = 0;
    for (entity, outcome) in query.iter(world) {
        sum += outcome.0[0] + 1;
        moving.push(entity);
    }
    world.resource_mut::<Emitted>().0 += sum;
    for entity in moving.drain(..) {
        world.entity_mut(entity).remove::<M5>().insert(MFree);
    }
}

fn sparse_markers_exclusive(world: &mut World, schedule: &mut Schedule) {
    world.spawn_batch((0..POOL).map(|_| {
        let (r, o, s) = parts();
        (r, o, s, MFree)
    }));
    schedule.add_systems(
        (
            exclusive_ingest,
            exclusive_stage::<M0, M1, 0>,
            exclusive_stage::<M1, M2, 1>,
            exclusive_stage::<M2, M3, 2>,
            exclusive_stage::<M3, M4, 3>,
            exclusive_stage::<M4, M5, 4>,
            exclusive_respond,
        )
            .chain(),
    );
}

// ---- pooled entities, a queue per stage

#[derive(Resource)]
struct Queues {
    free: Vec<Entity>,
    stages: [VecDeque<Entity>; 6],
}

fn queue_ingest(batch: Res<Batch>, mut queues: ResMut<Queues>, mut phases: Query<&mut Phase>) {
    for _ in 0..batch.0 {
        let Some(entity) = queues.free.pop() else {
            break;
        };
        *phases.get_mut(entity).expect("pooled") = Phase::At(0);
        queues.stages[0].push_back(entity);
    }
}

fn queue_stage<const K: usize>(
    mut queues: ResMut<Queues>,
    mut query: Query<(&mut Row, &mut Stamps, &mut Phase)>,
) {
    let mut taken = std::mem::take(&mut queues.stages[K]);
    for entity in taken.drain(..) {
        let (mut row, mut stamps, mut phase) = query.get_mut(entity).expect("pooled");
        assert!(*phase == Phase::At(K as u8));
        work(&mut row, &mut stamps, K);
        *phase = Phase::At(K as u8 + 1);
        queues.stages[K + 1].push_back(entity);
    }
    queues.stages[K] = taken;
}

fn queue_respond(
    mut queues: ResMut<Queues>,
    mut query: Query<(&Outcome, &mut Phase)>,
    mut emitted: ResMut<Emitted>,
) {
    let Queues { free, stages } = &mut *queues;
    for entity in stages[5].drain(..) {
        let (outcome, mut phase) = query.get_mut(entity).expect("pooled");
        emitted.0 += outcome.0[0] + 1;
        *phase = Phase::Free;
        free.push(entity);
    }
}

fn stage_queues(world: &mut World, schedule: &mut Schedule) {
    let free: Vec<Entity> = world
        .spawn_batch((0..POOL).map(|_| {
            let (r, o, s) = parts();
            (r, o, s, Phase::Free)
        }))
        .collect();
    world.insert_resource(Queues {
        free,
        stages: std::array::from_fn(|_| VecDeque::with_capacity(POOL)),
    });
    schedule.add_systems(
        (
            queue_ingest,
            queue_stage::<0>,
            queue_stage::<1>,
            queue_stage::<2>,
            queue_stage::<3>,
            queue_stage::<4>,
            queue_respond,
        )
            .chain(),
    );
}

// ---- pooled entities, a queue per stage, rows in a slot-indexed resource

#[derive(Component, Clone, Copy)]
struct Slot(usize);

#[derive(Resource)]
struct SlotRows {
    rows: Vec<Row>,
    stamps: Vec<Stamps>,
    outcomes: Vec<Outcome>,
}

fn slot_stage<const K: usize>(
    mut queues: ResMut<Queues>,
    mut rows: ResMut<SlotRows>,
    mut query: Query<(&Slot, &mut Phase)>,
) {
    let mut taken = std::mem::take(&mut queues.stages[K]);
    let SlotRows { rows, stamps, .. } = &mut *rows;
    for entity in taken.drain(..) {
        let (slot, mut phase) = query.get_mut(entity).expect("pooled");
        assert!(*phase == Phase::At(K as u8));
        work(&mut rows[slot.0], &mut stamps[slot.0], K);
        *phase = Phase::At(K as u8 + 1);
        queues.stages[K + 1].push_back(entity);
    }
    queues.stages[K] = taken;
}

fn slot_respond(
    mut queues: ResMut<Queues>,
    rows: Res<SlotRows>,
    mut query: Query<(&Slot, &mut Phase)>,
    mut emitted: ResMut<Emitted>,
) {
    let Queues { free, stages } = &mut *queues;
    for entity in stages[5].drain(..) {
        let (slot, mut phase) = query.get_mut(entity).expect("pooled");
        emitted.0 += rows.outcomes[slot.0].0[0] + 1;
        *phase = Phase::Free;
        free.push(entity);
    }
}

fn stage_queues_slot_rows(world: &mut World, schedule: &mut Schedule) {
    let free: Vec<Entity> = world
        .spawn_batch((0..POOL).map(|i| (Slot(i), Phase::Free)))
        .collect();
    let (row, outcome, stamps) = parts();
    world.insert_resource(SlotRows {
        rows: vec![row; POOL],
        stamps: vec![stamps; POOL],
        outcomes: vec![outcome; POOL],
    });
    world.insert_resource(Queues {
        free,
        stages: std::array::from_fn(|_| VecDeque::with_capacity(POOL)),
    });
    schedule.add_systems(
        (
            queue_ingest,
            slot_stage::<0>,
            slot_stage::<1>,
            slot_stage::<2>,
            slot_stage::<3>,
            slot_stage::<4>,
            slot_respond,
        )
            .chain(),
    );
}

#[derive(ScheduleLabel, Clone, Debug, PartialEq, Eq, Hash)]
struct Tick;

type Layout = fn(&mut World, &mut Schedule);

fn phases(c: &mut Criterion) {
    let layouts: [(&str, Layout); 5] = [
        ("spawn+scan", spawn_scan),
        ("sparse-markers", sparse_markers),
        ("sparse-markers-exclusive", sparse_markers_exclusive),
        ("stage-queues", stage_queues),
        ("stage-queues-slot-rows", stage_queues_slot_rows),
    ];
    for batch in [1usize, 16, 64] {
        let mut group = c.benchmark_group(format!("ecs_phases/batch_{batch}"));
        group
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20)
            .throughput(Throughput::Elements(batch as u64));
        for (name, layout) in layouts {
            let mut world = World::new();
            let mut schedule = Schedule::new(Tick);
            schedule.set_executor(SingleThreadedExecutor::new());
            world.insert_resource(Batch(batch));
            world.init_resource::<Emitted>();
            layout(&mut world, &mut schedule);
            // Every layout moves its requests all the way through.
            for _ in 0..3 {
                schedule.run(&mut world);
            }
            let emitted = world.resource::<Emitted>().0;
            assert_eq!(emitted, 3 * batch as u64, "{name} emits every request");
            group.bench_function(BenchmarkId::new(name, batch), |b| {
                b.iter(|| {
                    schedule.run(&mut world);
                    world.clear_trackers();
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, phases);
criterion_main!(benches);
