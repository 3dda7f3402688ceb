function [e, thresh] = edge(I, varargin)
  % Shim: MATLAB's edge(I) with its defaults only (method 'sobel', direction 'both', automatic
  % threshold, thinning) on a double image, written from the rule MathWorks' portable edge.m
  % documents (computeEdgesWithThinningPortable with the Sobel offsets [0 0 0 0]):
  %   bx = imfilter(I, op', 'replicate'), by = imfilter(I, op, 'replicate'), op = fspecial('sobel')/8
  %   b = bx.^2 + by.^2, cutoff = 4*sum(b(:))/numel(b), thresh = sqrt(cutoff)
  %   edge where b > cutoff and, with a neighbour outside the image passing its test,
  %   (|bx| >= |by| - 100*eps and b(r,c-1) <= b(r,c) > b(r,c+1)) or
  %   (|by| >= |bx| - 100*eps and b(r-1,c) <= b(r,c) > b(r+1,c)).
  % GNU Octave's own edge() differs (its thinning ignores the gradient direction, and it rejects
  % a double image outside 0..1). Kept in its own folder so that it shadows Octave's edge only
  % where a script adds it to the path on purpose.
  if nargin ~= 1 || ~isa(I, 'double') || ndims(I) ~= 2
    error('edge shim: only edge(I) of a 2-D double image, with the defaults');
  end
  op = fspecial('sobel') / 8;
  bx = imfilter(I, op', 'replicate');
  by = imfilter(I, op, 'replicate');
  b = bx .* bx + by .* by;
  cutoff = 4 * sum(b(:)) / numel(b);
  thresh = sqrt(cutoff);
  bx = abs(bx); by = abs(by);
  [m, n] = size(b);
  out = -inf;   % a neighbour outside the image passes both `<= b` and `b >`
  left = [out(ones(m, 1)), b(:, 1:end-1)]; right = [b(:, 2:end), out(ones(m, 1))];
  up = [out(ones(1, n)); b(1:end-1, :)]; down = [b(2:end, :); out(ones(1, n))];
  e = (b > cutoff) & (((bx >= by - 100 * eps) & (left <= b) & (b > right)) | ...
                      ((by >= bx - 100 * eps) & (up <= b) & (b > down)));
end
