#!/usr/bin/perl
# A perl loop over checkpoint/restart cycles: a hash, string building and a running checksum.
# Prints "tick N SUM" and, at the end, "total SUM KEYS" and "done". Usage: cov_loop.pl LIMIT
use strict;
use warnings;
use Time::HiRes qw(sleep);
$| = 1;
my $limit = $ARGV[0] // 1000;
my ($sum, %h, $s) = (0);
$s = '';
for my $i (1 .. $limit) {
    $sum = ($sum * 31 + $i * $i) % 1000000007;
    $h{"k$i"} = $i * 3;
    $s .= chr(65 + $i % 26);
    if (keys(%h) != $i || length($s) != $i || $h{"k" . int(($i + 1) / 2)} != 3 * int(($i + 1) / 2)) {
        print "FAIL tick $i: hash or string\n";
        exit 3;
    }
    print "tick $i $sum\n";
    sleep(0.02);
}
print "total $sum ", scalar(keys %h), "\n";
print "done\n";
