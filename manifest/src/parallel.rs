//! Work spread over the cores: [`parallel_map`] runs a function over a slice on up to one scoped
//! thread per core, each taking a run of items, and returns the results in the slice's order, so
//! callers can report the first error in order as a serial loop would. Parsing and reading big
//! releases use it; [`parallel_map_with`] gives each thread's run of items its own scratch state
//! (apply reads a thousand files with one open directory per run), and [`parallel_map_mut`] does
//! the same with each item borrowed mutably (the kustomize build patches and rewrites ten thousand
//! objects with it). [`free_apart`] frees a large
//! value on a thread of its own.

/// The number of cores, asked once (the standard library reads cgroup files every time).
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// `work` over `items`, in order, on up to one thread per core. Fewer than `min_items` items
/// are done on this thread (starting threads costs more than small work saves).
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    min_items: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    parallel_map_with(items, min_items, || (), |(), item| work(item))
}

/// [`parallel_map`] where `start` gives each run of items its own scratch state (a cache, an open
/// directory) that `work` gets with every item of the run.
pub fn parallel_map_with<T: Sync, S, R: Send>(
    items: &[T],
    min_items: usize,
    start: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T) -> R + Sync,
) -> Vec<R> {
    // The items' references split into runs as the items themselves would be.
    let mut borrowed: Vec<&T> = items.iter().collect();
    parallel_map_mut(&mut borrowed, min_items, start, |scratch, item| {
        work(scratch, item)
    })
}

/// How many of `count` items each thread takes, or `None` when they are better done on the
/// calling thread (one core, or fewer than `min_items` items).
fn run_length(count: usize, min_items: usize) -> Option<usize> {
    let threads = threads().min(count);
    (threads > 1 && count >= min_items.max(2)).then(|| count.div_ceil(threads))
}

/// The results of the threads `handles` ran (each a run of items), in the order of the runs; a
/// panic on one of them is resumed here.
fn joined_in_order<R>(handles: Vec<std::thread::ScopedJoinHandle<'_, Vec<R>>>) -> Vec<R> {
    handles
        .into_iter()
        .flat_map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
        .collect()
}

/// [`parallel_map_with`] over items borrowed mutably. The results come back in the slice's order.
pub fn parallel_map_mut<T: Send, S, R: Send>(
    items: &mut [T],
    min_items: usize,
    start: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &mut T) -> R + Sync,
) -> Vec<R> {
    let Some(run) = run_length(items.len(), min_items) else {
        let mut scratch = start();
        return items
            .iter_mut()
            .map(|item| work(&mut scratch, item))
            .collect();
    };
    std::thread::scope(|scope| {
        let (work, start) = (&work, &start);
        let handles: Vec<_> = items
            .chunks_mut(run)
            .map(|part| {
                scope.spawn(move || {
                    let mut scratch = start();
                    part.iter_mut()
                        .map(|item| work(&mut scratch, item))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        joined_in_order(handles)
    })
}

/// Drops `value` on a thread of its own: freeing tens of thousands of parsed documents takes tens
/// of milliseconds that nothing needs to wait for (a process that ends first frees it all at
/// once).
pub fn free_apart<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_however_the_work_is_split() {
        let items: Vec<u32> = (0..1000).collect();
        for min_items in [0, 64, 2000] {
            let doubled = parallel_map(&items, min_items, |item| item * 2);
            assert_eq!(
                doubled,
                items.iter().map(|item| item * 2).collect::<Vec<_>>()
            );
        }
        assert!(parallel_map(&[] as &[u32], 0, |item| *item).is_empty());
    }

    #[test]
    fn every_item_is_changed_once_in_place_and_each_run_keeps_its_own_scratch() {
        for min_items in [0, 64, 2000] {
            let mut items: Vec<u32> = (0..1000).collect();
            // The scratch counts the items its run has seen: each run starts from zero, so the
            // counts add up to the number of items however many runs there were.
            let seen = parallel_map_mut(
                &mut items,
                min_items,
                || 0usize,
                |count, item| {
                    *item += 1;
                    *count += 1;
                    *count
                },
            );
            assert_eq!(items, (1..=1000).collect::<Vec<u32>>());
            let runs = seen.iter().filter(|&&count| count == 1).count();
            assert!(runs >= 1 && runs <= threads().max(1));
            let per_run_totals: usize = seen
                .windows(2)
                .filter(|pair| pair[1] == 1)
                .map(|pair| pair[0])
                .sum::<usize>()
                + seen.last().copied().unwrap_or(0);
            assert_eq!(per_run_totals, 1000);
        }
        let mut empty: [u32; 0] = [];
        assert!(parallel_map_mut(&mut empty, 0, || (), |_, item| *item).is_empty());
    }
}
