# tests/bench/plot.gp: plot tests/bench/results.csv (written by run.sh).
#
#   gnuplot -e "csv='results.csv'; out='results.svg'" plot.gp
#
# Four panels: 4 KiB IOPS; nvmfd CPU time per I/O (with the 1.5 us target);
# queue-depth-1 latency (also with poll_us) beside the TCP ping-pong
# baseline; 128 KiB bandwidth beside the TCP stream baselines (with the
# 0.8x targets, and the stream sent with MSG_ZEROCOPY).
# Rows are picked by their test name, so the row order does not matter.

if (!exists("csv")) csv = "results.csv"
if (!exists("out")) out = "results.svg"

set datafile separator ","
set datafile commentschars "#"
# An output name ending in .png gives PNG (pngcairo), anything else SVG.
if (strlen(out) > 4 && out[strlen(out)-3:] eq "png") {
	set terminal pngcairo size 1200,900 font "sans,10" background "white"
} else {
	set terminal svg size 1200,900 dynamic font "sans,11" background "white"
}
set output out

# Columns of results.csv (see README.md).
C_IOPS = 9; C_MBPS = 10; C_AVG = 11; C_P50 = 12; C_P99 = 13
C_TCPU = 18

hdr = system(sprintf("sed -n 's/^# //p' '%s' | head -2 | tr '\\n' ' '", csv))

nan = NaN
p4k(s) = s eq "randread_4k_qd1" ? 0 : s eq "randread_4k_qd32" ? 1 : \
	s eq "randread_4k_qd128" ? 2 : s eq "randwrite_4k_qd1" ? 3 : \
	s eq "randwrite_4k_qd32" ? 4 : s eq "randwrite_4k_qd128" ? 5 : \
	s eq "pingpong_72_4120_qd32" ? 6.3 : nan
pio(s) = s eq "read_128k_qd16" ? 6 : s eq "write_128k_qd16" ? 7 : \
	s eq "pingpong_72_4120_qd32" ? 8.3 : s eq "pingpong_72_4120" ? nan : p4k(s)
grey(s) = strstrt(s, "pingpong") > 0 || strstrt(s, "stream") > 0 ? \
	0xaaaaaa : 0x4477aa
plat(s) = s eq "randread_4k_qd1" ? 0 : s eq "randread_4k_qd1_P" ? 1 : \
	s eq "randread_4k_qd1_poll0" ? 2 : s eq "randwrite_4k_qd1" ? 3 : \
	s eq "pingpong_72_4120" ? 4 : nan
pbw(s) = s eq "read_128k_qd16" ? 0 : s eq "stream_s2c" ? 1 : \
	s eq "stream_s2c_1g" ? 2 : s eq "stream_s2c_1g_zc" ? 3 : \
	s eq "write_128k_qd16" ? 4.5 : s eq "stream_c2s" ? 5.5 : nan

set multiplot layout 2,2 title hdr font "sans,10"
set style fill solid 0.8 border -1
set grid ytics
set key top right
set bmargin 4
set offsets 0, 0, graph 0.08, 0	# room for the value labels

# ---------------------------------------------------------------- IOPS
set title "4 KiB random I/O, 1 queue, 1 nvmfd worker (grey: TCP ping-pong, depth 32)"
set ylabel "IOPS"
set xrange [-0.6:6.9]
set yrange [0:*]
set xtics ("read\nQD1" 0, "read\nQD32" 1, "read\nQD128" 2, \
	"write\nQD1" 3, "write\nQD32" 4, "write\nQD128" 5, "TCP\nQD32" 6.3)
set boxwidth 0.6
plot csv using (p4k(strcol(1))):(column(C_IOPS)):(grey(strcol(1))) \
	with boxes lc rgb variable notitle, \
	'' using (p4k(strcol(1))):(column(C_IOPS)): \
	(sprintf("%.0fk", column(C_IOPS) / 1000)) with labels offset 0,0.7 \
	notitle

# ---------------------------------------------------------------- CPU/IO
set title "nvmfd CPU time per I/O (grey: TCP ping-pong server, depth 32)"
set ylabel "us per I/O"
set xrange [-0.6:8.9]
set xtics ("4K rd\nQD1" 0, "4K rd\nQD32" 1, "4K rd\nQD128" 2, \
	"4K wr\nQD1" 3, "4K wr\nQD32" 4, "4K wr\nQD128" 5, \
	"128K rd\nQD16" 6, "128K wr\nQD16" 7, "TCP\nQD32" 8.3)
set logscale y
set yrange [*:*]
set arrow 1 from -0.6,1.5 to 8.9,1.5 nohead lc rgb "#cc3311" dt 2 lw 2
set key top center
plot csv using (pio(strcol(1))):(column(C_TCPU)): \
	(grey(strcol(1)) == 0xaaaaaa ? 0xaaaaaa : 0x228833) \
	with boxes lc rgb variable notitle, \
	'' using (pio(strcol(1))):(column(C_TCPU)): \
	(sprintf("%.2f", column(C_TCPU))) with labels offset 0,0.7 notitle, \
	keyentry with lines lc rgb "#cc3311" dt 2 lw 2 \
	title "target at 4K read QD32: 1.5 us"
unset arrow 1

# ---------------------------------------------------------------- latency
set title "Queue depth 1 latency vs. TCP ping-pong (72 B / 4120 B)"
set ylabel "us (log scale)"
set xrange [-0.6:4.6]
set xtics ("nvmfd 4K\nrandread" 0, "randread,\nclient polls" 1, \
	"randread\npoll\\_us 0" 2, "nvmfd 4K\nrandwrite" 3, \
	"TCP\nping-pong" 4)
set boxwidth 0.25
set key top left
plot csv using (plat(strcol(1)) - 0.27):(column(C_AVG)) with boxes \
	lc rgb "#4477aa" title "average", \
	'' using (plat(strcol(1))):(column(C_P50)) with boxes \
	lc rgb "#66ccee" title "p50", \
	'' using (plat(strcol(1)) + 0.27):(column(C_P99)) with boxes \
	lc rgb "#ee6677" title "p99", \
	'' using (plat(strcol(1)) - 0.27):(column(C_AVG)): \
	(sprintf("%.0f", column(C_AVG))) with labels offset 0,0.7 notitle, \
	'' using (plat(strcol(1)) + 0.27):(column(C_P99)): \
	(sprintf("%.0f", column(C_P99))) with labels offset 0,0.7 notitle
unset logscale y

# ---------------------------------------------------------------- bandwidth
set title "128 KiB sequential, QD16 vs. TCP stream (target: >= 0.8x)"
set ylabel "MB/s"
set xrange [-0.6:6.1]
set yrange [0:*]
set xtics ("nvmfd\nread" 0, "stream\nserver->client" 1, \
	"stream s->c\nwalking 1 GiB" 2, "1 GiB,\nzero-copy" 3, \
	"nvmfd\nwrite" 4.5, "stream\nclient->server" 5.5)
set boxwidth 0.6
set key top right
plot csv using (pbw(strcol(1))):(column(C_MBPS)): \
	(grey(strcol(1))) with boxes lc rgb variable \
	notitle, \
	'' using (pbw(strcol(1))):(column(C_MBPS)): \
	(sprintf("%.0f", column(C_MBPS))) with labels offset 0,0.7 notitle, \
	'' using (strcol(1) eq "stream_s2c" ? pbw(strcol(1)) - 1.4 : nan): \
	(0.8 * column(C_MBPS)):(1.8):(0) with vectors nohead \
	lc rgb "#cc3311" dt 2 lw 2 title "0.8x stream", \
	'' using (strcol(1) eq "stream_c2s" ? pbw(strcol(1)) - 1.4 : nan): \
	(0.8 * column(C_MBPS)):(1.8):(0) with vectors nohead \
	lc rgb "#cc3311" dt 2 lw 2 notitle

unset multiplot
