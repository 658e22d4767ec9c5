//! Fixed-size ring buffers of samples, one per metric and track, covering `metrics.history`.
//! Pure data; the sampler fills them through app actions.

use std::collections::VecDeque;
use std::time::SystemTime;

/// One sample: `None` is "no data" (empty result, NaN, ±Inf), never zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at: SystemTime,
    pub value: Option<f64>,
}

/// The newest `capacity` points of one metric for one track.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    capacity: usize,
    points: VecDeque<Point>,
}

impl Series {
    pub fn new(capacity: usize) -> Series {
        let capacity = capacity.max(1);
        Series {
            capacity,
            points: VecDeque::with_capacity(capacity),
        }
    }

    pub fn push(&mut self, point: Point) {
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    pub fn latest(&self) -> Option<&Point> {
        self.points.back()
    }

    pub fn points(&self) -> impl DoubleEndedIterator<Item = &Point> + ExactSizeIterator {
        self.points.iter()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The largest value held, for scaling a chart.
    pub fn max(&self) -> Option<f64> {
        self.points
            .iter()
            .filter_map(|p| p.value)
            .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn p(s: u64, v: Option<f64>) -> Point {
        Point {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(s),
            value: v,
        }
    }

    #[test]
    fn oldest_point_falls_out_when_full() {
        let mut s = Series::new(2);
        s.push(p(1, Some(1.0)));
        s.push(p(2, None));
        s.push(p(3, Some(3.0)));
        assert_eq!(s.len(), 2);
        assert_eq!(s.points().next(), Some(&p(2, None)));
        assert_eq!(s.latest(), Some(&p(3, Some(3.0))));
    }

    #[test]
    fn no_data_is_not_counted_as_a_value() {
        let mut s = Series::new(3);
        s.push(p(1, None));
        assert_eq!(s.max(), None);
        s.push(p(2, Some(0.5)));
        assert_eq!(s.max(), Some(0.5));
    }
}
